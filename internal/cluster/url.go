package cluster

// MemberURL is the URL of path ("" for the base, else starting with '/') on the HTTP
// server (gateway, API, Manager) of a member at addr (host:port): https where the
// members' gateways serve TLS (gateway.tls_cert), else http. The member-to-member
// requests over the links are not such URLs: they name the peer, and package link
// chooses the transport.
func MemberURL(addr string, tls bool, path string) string {
	if tls {
		return "https://" + addr + path
	}
	return "http://" + addr + path
}
