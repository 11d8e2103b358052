package emailotp
