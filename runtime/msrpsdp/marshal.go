package msrpsdp

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Marshal writes m as a complete session description, the body of an
// application/sdp part (RFC 4975 §8, DESIGN.md §6):
//
//	v=0
//	o=- <sessionID> <version> IN IP4|IP6 <Host>
//	s=-
//	c=IN IP4|IP6 <Host>
//	t=0 0
//	m=message <Port> TCP/MSRP|TCP/TLS/MSRP *
//	a=path:<Path joined by SP>
//	a=accept-types:<AcceptTypes joined by SP>
//	a=accept-wrapped-types:...   (when AcceptWrappedTypes is not empty)
//	a=<Direction>                (always; "" is written as sendrecv)
//	a=setup:<Setup>              (when Setup is not "")
//	a=max-size:<MaxSize>         (when MaxSize > 0)
//
// Every line ends in CRLF, the last one included (RFC 4566 §5; pion/sdp
// needs the final line end to read the description back). sessionID and
// version are the o= line's sess-id and sess-version: keep the same sessionID
// for a dialog and increment version on every new offer (RFC 3264 §8).
//
// Marshal refuses (with an *Error wrapping ErrInvalid) any m that Parse would
// refuse, so Parse(Marshal(m)) returns m for every m Marshal accepts, with
// Direction "" reported as SendRecv.
func Marshal(m Media, sessionID, version uint64) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	addrType := "IP4"
	if addr, _ := netip.ParseAddr(m.Host); !addr.Is4() {
		addrType = "IP6"
	}
	protos := []string{"TCP", "MSRP"}
	if m.TLS {
		protos = []string{"TCP", "TLS", "MSRP"}
	}
	dir := m.Direction
	if dir == "" {
		dir = SendRecv
	}
	attrs := []sdp.Attribute{
		sdp.NewAttribute("path", strings.Join(m.Path, " ")),
		sdp.NewAttribute("accept-types", strings.Join(m.AcceptTypes, " ")),
	}
	if len(m.AcceptWrappedTypes) > 0 {
		attrs = append(attrs, sdp.NewAttribute("accept-wrapped-types", strings.Join(m.AcceptWrappedTypes, " ")))
	}
	attrs = append(attrs, sdp.NewPropertyAttribute(dir))
	if m.Setup != "" {
		attrs = append(attrs, sdp.NewAttribute("setup", m.Setup))
	}
	if m.MaxSize > 0 {
		attrs = append(attrs, sdp.NewAttribute("max-size", strconv.FormatInt(m.MaxSize, 10)))
	}
	sd := sdp.SessionDescription{
		Version: 0,
		Origin: sdp.Origin{
			Username:       "-",
			SessionID:      sessionID,
			SessionVersion: version,
			NetworkType:    "IN",
			AddressType:    addrType,
			UnicastAddress: m.Host,
		},
		SessionName: "-",
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: "IN",
			AddressType: addrType,
			Address:     &sdp.Address{Address: m.Host},
		},
		TimeDescriptions: []sdp.TimeDescription{{Timing: sdp.Timing{StartTime: 0, StopTime: 0}}},
		MediaDescriptions: []*sdp.MediaDescription{{
			MediaName: sdp.MediaName{
				Media:   "message",
				Port:    sdp.RangedPort{Value: m.Port},
				Protos:  protos,
				Formats: []string{"*"},
			},
			Attributes: attrs,
		}},
	}
	return sd.Marshal()
}
