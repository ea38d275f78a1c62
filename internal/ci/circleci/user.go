package circleci

import (
	"context"
	"net/http"
)

// User is the user a token belongs to.
type User struct {
	ID    string `json:"id"`
	Login string `json:"login"`
	Name  string `json:"name"`
}

// Me returns the token's user: one cheap request that fails with
// KindUnauthorized when the token is wrong, before anything else is tried.
func (c *Client) Me(ctx context.Context) (User, error) {
	var u User
	err := c.do(ctx, call{method: http.MethodGet, path: "/me", op: "check the API token", target: Target{Kind: TargetUser}}, &u)
	return u, err
}
