package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

// A device cookie is what a browser keeps once a name has logged in from
// it: a random nonce and a MAC over the nonce, the name and the secret that
// logged in, made with a key only this console holds (a new one each
// start). A login that presents one valid for the name and the secret it
// logs in with is throttled on the device alone, not on the name or the
// client address: failed logins from elsewhere cannot lock the name out of
// the browsers it already used (the "device cookie" defence against
// lockout attacks). A guess is never such a login: with any other secret
// the cookie counts for nothing, so cookies collected while a secret was
// known give no guesses at its successor. The cookie does not say the name
// or the secret, and one made for another name, or by another console,
// counts for nothing.
const (
	deviceCookie = "bb_console_device"
	// deviceMaxAge is how long a browser keeps its device cookie; each
	// login from it makes a new one.
	deviceMaxAge = 90 * 24 * time.Hour
)

// deviceMAC is the MAC of nonce, name and secret under the console's
// device key. The secret goes in as its SHA-256, so each part has a fixed
// end.
func (c *Console) deviceMAC(name, secret, nonce string) []byte {
	sum := sha256.Sum256([]byte(secret))
	m := hmac.New(sha256.New, c.deviceKey)
	m.Write(sum[:])
	m.Write([]byte(nonce))
	m.Write([]byte{0})
	m.Write([]byte(name))
	return m.Sum(nil)
}

// rememberDevice gives the browser a new device cookie for name and the
// secret it logged in with.
func (c *Console) rememberDevice(w http.ResponseWriter, r *http.Request, name, secret string) {
	nonce := randomToken(16)
	c.setCookie(w, r, deviceCookie, nonce+"."+base64.RawURLEncoding.EncodeToString(c.deviceMAC(name, secret, nonce)), int(deviceMaxAge/time.Second))
}

// device returns the throttle key of the request's device cookie when it is
// valid for name and secret, and "" otherwise.
func (c *Console) device(r *http.Request, name, secret string) string {
	ck, err := r.Cookie(deviceCookie)
	if err != nil {
		return ""
	}
	nonce, mac, ok := strings.Cut(ck.Value, ".")
	if !ok || nonce == "" {
		return ""
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, c.deviceMAC(name, secret, nonce)) {
		return ""
	}
	return "device:" + hashKey(ck.Value)
}
