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
// it: a random nonce and a MAC over the name and the nonce, made with a key
// only this console holds. A login that presents one valid for the name it
// logs in as is throttled on the device alone, not on the name or the
// client address: failed logins from elsewhere cannot lock the name out of
// the browsers it already used (the "device cookie" defence against
// lockout attacks). The cookie does not name the name, and one made for
// another name, or by another console, counts for nothing.
const (
	deviceCookie = "bb_console_device"
	// deviceMaxAge is how long a browser keeps its device cookie; each
	// login from it makes a new one.
	deviceMaxAge = 90 * 24 * time.Hour
)

// deviceMAC is the MAC of name and nonce under the console's device key.
func (c *Console) deviceMAC(name, nonce string) []byte {
	m := hmac.New(sha256.New, c.deviceKey)
	m.Write([]byte(nonce))
	m.Write([]byte{0})
	m.Write([]byte(name))
	return m.Sum(nil)
}

// rememberDevice gives the browser a new device cookie for name.
func (c *Console) rememberDevice(w http.ResponseWriter, r *http.Request, name string) {
	nonce := randomToken(16)
	c.setCookie(w, r, deviceCookie, nonce+"."+base64.RawURLEncoding.EncodeToString(c.deviceMAC(name, nonce)), int(deviceMaxAge/time.Second))
}

// device returns the throttle key of the request's device cookie when it is
// valid for name, and "" otherwise.
func (c *Console) device(r *http.Request, name string) string {
	ck, err := r.Cookie(deviceCookie)
	if err != nil {
		return ""
	}
	nonce, mac, ok := strings.Cut(ck.Value, ".")
	if !ok || nonce == "" {
		return ""
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, c.deviceMAC(name, nonce)) {
		return ""
	}
	return "device:" + hashKey(ck.Value)
}
