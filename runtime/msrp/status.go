package msrp

// MSRP status codes, RFC 4975 §10 (and 423 from RFC 4976 §5.2 for AUTH).
const (
	StatusOK               = 200
	StatusBadRequest       = 400
	StatusUnauthorized     = 401
	StatusForbidden        = 403
	StatusTimeout          = 408
	StatusTooLarge         = 413
	StatusUnsupportedMedia = 415
	StatusIntervalTooBrief = 423
	StatusNoSession        = 481
	StatusNotUnderstood    = 501
	StatusWrongConnection  = 506
)

// StatusText returns the reason phrase this package uses for a status code, or
// "" for a code it does not know.
func StatusText(code int) string {
	switch code {
	case StatusOK:
		return "OK"
	case StatusBadRequest:
		return "Bad Request"
	case StatusUnauthorized:
		return "Unauthorized"
	case StatusForbidden:
		return "Forbidden"
	case StatusTimeout:
		return "Request Timeout"
	case StatusTooLarge:
		return "Message Too Large"
	case StatusUnsupportedMedia:
		return "Unsupported Media Type"
	case StatusIntervalTooBrief:
		return "Interval Out-of-Bounds"
	case StatusNoSession:
		return "Session Does Not Exist"
	case StatusNotUnderstood:
		return "Method Not Implemented"
	case StatusWrongConnection:
		return "Session Already Bound"
	}
	return ""
}
