package emailotp

import "time"

// now is the clock of the ledgers and limiters; tests replace it.
var now = time.Now
