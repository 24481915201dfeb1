package testenv

import "github.com/bankbook/bankbook/domain"

// BusinessAggregates are the aggregate types requests write to. Tests that
// check what a request wrote count only these: the notify reactor records a
// notification a moment after the event that calls for it, whenever that
// happens to be.
var BusinessAggregates = []string{domain.AggregateOrder, domain.AggregateDeposit, domain.AggregateWallet, domain.AggregatePayout, domain.AggregateLink, domain.AggregateReconciliation}
