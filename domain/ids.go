package domain

// OrderID identifies an order. IDs are used as NATS subject tokens, so they
// are restricted to 1–64 characters of [A-Za-z0-9_-].
type OrderID string

// UserID identifies a buyer (and later a wallet owner).
type UserID string

// MaxIDLength is the longest ID accepted.
const MaxIDLength = 64

// ValidateID checks an ID supplied in field.
func ValidateID(field, id string) error {
	if id == "" {
		return Invalid(field, "is required")
	}
	if len(id) > MaxIDLength {
		return Invalid(field, "must be at most %d characters", MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return Invalid(field, "may contain only letters A-Z a-z, digits, '_' and '-'")
		}
	}
	return nil
}
