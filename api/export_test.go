package api

import "reflect"

// ReplyTypes are the endpoints' reply types, in the order of Endpoints.
func ReplyTypes() []reflect.Type { return replyTypes }
