package emailotp

// withDefaults is the sign-in block with its defaults filled, the receiver
// left as configured: what the tests compare a parsed block against.
func (s SignInConfig) withDefaults(clients []*Client) SignInConfig {
	s.fillDefaults(clients)
	return s
}
