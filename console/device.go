package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/bankbook/bankbook/auth"
)

// A device cookie is what a browser keeps once a name has logged in from
// it: a random nonce and a MAC over the nonce, the name and the name's
// credential as the console holds it (its NKey, or its password's hash),
// made with a key only this console holds (a new one each start). A login
// that presents one valid for its name is counted on the device alone, not
// on the name or the client address: failed logins from elsewhere cannot
// lock the name out of the browsers it already used (the "device cookie"
// defence against lockout attacks).
//
// Whether a cookie counts never depends on the secret a login sends, so a
// login is answered alike with a cookie and without one, right secret or
// wrong. A device whose logins failed MaxFailures times is spent for as
// long as the console runs: from then on its cookie counts for nothing,
// and its logins are counted on the name and the address like any other.
// So a cookie, stolen or kept past a change of secret, gives at most
// MaxFailures guesses beyond the name's lockout. One made for another name,
// for a credential since replaced, or by another console counts for
// nothing; nor does the cookie say the name.
const (
	deviceCookie = "bb_console_device"
	// deviceMaxAge is how long a browser keeps its device cookie; each
	// login from it makes a new one.
	deviceMaxAge = 90 * 24 * time.Hour
	// maxSpentDevices bounds the spent devices a console remembers; past
	// it, no device cookie counts until the console restarts (every login
	// is counted on its name and address).
	maxSpentDevices = maxThrottleKeys
)

// deviceMAC is the MAC of nonce, name and the identity's credential under
// the console's device key. Each part has a fixed end.
func (c *Console) deviceMAC(id auth.Identity, nonce string) []byte {
	m := hmac.New(sha256.New, c.deviceKey)
	for _, part := range []string{nonce, id.Name, id.NKey, id.Password} {
		sum := sha256.Sum256([]byte(part))
		m.Write(sum[:])
	}
	return m.Sum(nil)
}

// rememberDevice gives the browser a new device cookie for the identity
// that logged in.
func (c *Console) rememberDevice(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	nonce := randomToken(16)
	c.setCookie(w, r, deviceCookie, nonce+"."+base64.RawURLEncoding.EncodeToString(c.deviceMAC(id, nonce)), int(deviceMaxAge/time.Second))
}

// device returns the throttle key of the request's device cookie when it is
// valid for name and not spent, and "" otherwise.
func (c *Console) device(r *http.Request, name string) string {
	id, known := c.byName[name]
	ck, err := r.Cookie(deviceCookie)
	if !known || err != nil {
		return ""
	}
	nonce, mac, ok := strings.Cut(ck.Value, ".")
	if !ok || nonce == "" {
		return ""
	}
	// Strict: the MAC's last character has two bits no one reads, and a
	// cookie spelled four ways would be four devices, each with its own
	// MaxFailures guesses. Only the spelling the console made counts.
	got, err := base64.RawURLEncoding.Strict().DecodeString(mac)
	if err != nil || !hmac.Equal(got, c.deviceMAC(id, nonce)) {
		return ""
	}
	key := "device:" + hashKey(ck.Value)
	c.spentMu.Lock()
	defer c.spentMu.Unlock()
	if c.spent[key] || len(c.spent) >= maxSpentDevices || len(c.tried) >= maxSpentDevices {
		return ""
	}
	// Counted over the console's life, not the throttle's window: guesses
	// spread over many windows spend the cookie all the same.
	if c.tried[key]++; c.tried[key] > c.cfg.MaxFailures {
		delete(c.tried, key)
		c.spent[key] = true
		return ""
	}
	return key
}

// untry takes back an attempt device counted against key (a login that
// succeeded, or failed for another reason than its secret).
func (c *Console) untry(key string) {
	if key == "" {
		return
	}
	c.spentMu.Lock()
	defer c.spentMu.Unlock()
	if c.tried[key] > 1 {
		c.tried[key]--
	} else {
		delete(c.tried, key)
	}
}

// spend makes device key count for nothing from now on.
func (c *Console) spend(key string) {
	c.spentMu.Lock()
	defer c.spentMu.Unlock()
	if len(c.spent) < maxSpentDevices {
		c.spent[key] = true
	}
}
