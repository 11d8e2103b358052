// Package claims is the claim set of email_otp's tokens: the typ headers,
// the claims besides the registered ones, and the rules that name claims
// and values after the configured method. The plugin mints with these and
// bench's signing floor imports them instead of copying them.
package claims

// Typ header values of the tokens.
const (
	TypID      = "JWT"
	TypAccess  = "at+jwt"      // RFC 9068
	TypSession = "session+jwt" // the sign-in page's cookie; never passes as the others
)

// ID are the id_token claims besides the registered ones; the grant-type
// claim and a client's static claims are added per token since their
// names are configured.
type ID struct {
	AuthTime      int64    `json:"auth_time"`
	AMR           []string `json:"amr"`
	AZP           string   `json:"azp"`
	SessionIndex  string   `json:"session_index"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Nonce         string   `json:"nonce,omitempty"`
}

// Access are the RFC 9068 access token claims besides the registered ones.
type Access struct {
	ClientID     string `json:"client_id"`
	Scope        string `json:"scope"`
	AuthTime     int64  `json:"auth_time"`
	Email        string `json:"email"` // normalized; sub is as the client sent it
	SessionIndex string `json:"session_index"`
}

// AMR is the amr value of a method: the Ubisecure authentication-context
// URI under the issuer.
func AMR(issuer, method string) string { return issuer + "/saml2/names/ac/" + method }

// GrantTypeClaim is the id_token claim naming the grant.
func GrantTypeClaim(method string) string { return method + ".grant_type" }
