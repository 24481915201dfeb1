package domain

import "strconv"

// MaxAmount is the largest amount the engine accepts, in minor units.
const MaxAmount int64 = 1_000_000_000_000_000 // 10^15

// Currency is an ISO 4217 code.
type Currency string

// KRW is the Korean won, which has no minor unit.
const KRW Currency = "KRW"

// Money is an amount in the currency's minor unit. Amounts are integers:
// there is no floating point anywhere in bankbook.
type Money struct {
	Amount   int64    `json:"amount"`
	Currency Currency `json:"currency"`
}

// NewMoney validates an amount (0 < amount ≤ MaxAmount) and a currency
// ("" means KRW; only KRW is collected today).
func NewMoney(amount int64, currency string) (Money, error) {
	if currency == "" {
		currency = string(KRW)
	}
	if Currency(currency) != KRW {
		return Money{}, ErrUnsupportedCurrency.With("currency "+strconv.Quote(Clip(currency, 8))+" is not supported; use KRW", map[string]any{"field": "currency"})
	}
	if amount <= 0 {
		return Money{}, Invalid("amount", "must be greater than 0")
	}
	if amount > MaxAmount {
		return Money{}, Invalid("amount", "must not exceed %d", MaxAmount)
	}
	return Money{Amount: amount, Currency: Currency(currency)}, nil
}

func (m Money) String() string { return strconv.FormatInt(m.Amount, 10) + " " + string(m.Currency) }
