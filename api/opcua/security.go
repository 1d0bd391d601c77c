package opcua

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"reflect"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

// Token policies the endpoint offers (UserTokenPolicy.PolicyID).
const (
	policyAnonymous = "anonymous"
	policyUserName  = "username_basic256sha256"
	// passwordAlg is how a Basic256Sha256 client encrypts the password.
	passwordAlg = "http://www.w3.org/2001/04/xmlenc#rsa-oaep"
	// maxSessions bounds the sessions remembered as activated; gopcua
	// keeps its own sessions until they are closed.
	maxSessions = 1024
)

// sessionAuth is what an activated session may do.
type sessionAuth struct {
	sess   any        // gopcua's session, to tell a reused token from its session
	tok    *ua.NodeID // its authentication token
	user   string     // "" for anonymous
	change bool       // may call methods
}

// anonymousAllowed reports whether anonymous sessions may be activated.
func (s *Server) anonymousAllowed() bool { return s.loopback && !s.opts.ProtectReads }

// anonymousMayChange reports whether anonymous sessions may call methods:
// only without a token, as the HTTP API's changes.
func (s *Server) anonymousMayChange() bool { return s.opts.Token == "" }

// selfSigned makes the server's RSA 2048 key and a self-signed
// certificate for host, valid for ten years.
func selfSigned(host string) (*rsa.PrivateKey, []byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	name, _ := os.Hostname()
	if name == "" {
		name = "localhost"
	}
	appURI, _ := url.Parse("urn:webinspect:" + name)
	now := time.Now()
	tmpl := x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "webinspect OPC UA server", Organization: []string{"webinspect"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment |
			x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{appURI},
		DNSNames:              []string{"localhost", name},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else if host != "localhost" && host != name {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	return key, der, nil
}

// setTokenPolicies replaces the user token policies gopcua made for the
// endpoints with the server's: anonymous where allowed, and a user name
// whose password is encrypted with Basic256Sha256 when a token is set.
// gopcua offers no option for a user name policy on a None channel, and
// its endpoint descriptions are shared pointers, so they are changed in
// place right after Start (ActivateSession enforces the policies anyway).
func (s *Server) setTokenPolicies() {
	var toks []*ua.UserTokenPolicy
	if s.anonymousAllowed() {
		toks = append(toks, &ua.UserTokenPolicy{PolicyID: policyAnonymous, TokenType: ua.UserTokenTypeAnonymous,
			SecurityPolicyURI: ua.SecurityPolicyURINone})
	}
	if s.opts.Token != "" {
		toks = append(toks, &ua.UserTokenPolicy{PolicyID: policyUserName, TokenType: ua.UserTokenTypeUserName,
			SecurityPolicyURI: ua.SecurityPolicyURIBasic256Sha256})
	}
	for _, ep := range s.ua.Endpoints() {
		ep.UserIdentityTokens = toks
	}
}

// registerHandlers puts the server's own handlers in front of gopcua's
// (RegisterHandler keeps the first handler registered for a service, and
// gopcua registers its own in Start).
func (s *Server) registerHandlers() {
	u := s.ua
	u.RegisterHandler(id.ActivateSessionRequest_Encoding_DefaultBinary, s.activateSession)
	u.RegisterHandler(id.ReadRequest_Encoding_DefaultBinary, s.gate(false, s.read))
	u.RegisterHandler(id.BrowseRequest_Encoding_DefaultBinary, s.gate(false, s.browse))
	u.RegisterHandler(id.CallRequest_Encoding_DefaultBinary, s.gate(true, s.call))
	u.RegisterHandler(id.WriteRequest_Encoding_DefaultBinary, s.gate(false, s.write))
	// Subscriptions: gopcua's, behind the gate. Its services exist once
	// Start has run, so look them up per request.
	sub := func(f func() server.Handler) server.Handler {
		return s.gate(false, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
			return f()(sc, r, reqID)
		})
	}
	for typeID, f := range map[uint16]func() server.Handler{
		id.CreateSubscriptionRequest_Encoding_DefaultBinary:    func() server.Handler { return u.SubscriptionService.CreateSubscription },
		id.ModifySubscriptionRequest_Encoding_DefaultBinary:    func() server.Handler { return u.SubscriptionService.ModifySubscription },
		id.SetPublishingModeRequest_Encoding_DefaultBinary:     func() server.Handler { return u.SubscriptionService.SetPublishingMode },
		id.PublishRequest_Encoding_DefaultBinary:               func() server.Handler { return u.SubscriptionService.Publish },
		id.RepublishRequest_Encoding_DefaultBinary:             func() server.Handler { return u.SubscriptionService.Republish },
		id.TransferSubscriptionsRequest_Encoding_DefaultBinary: func() server.Handler { return u.SubscriptionService.TransferSubscriptions },
		id.DeleteSubscriptionsRequest_Encoding_DefaultBinary:   func() server.Handler { return u.SubscriptionService.DeleteSubscriptions },
		id.CreateMonitoredItemsRequest_Encoding_DefaultBinary:  func() server.Handler { return u.MonitoredItemService.CreateMonitoredItems },
		id.ModifyMonitoredItemsRequest_Encoding_DefaultBinary:  func() server.Handler { return u.MonitoredItemService.ModifyMonitoredItems },
		id.SetMonitoringModeRequest_Encoding_DefaultBinary:     func() server.Handler { return u.MonitoredItemService.SetMonitoringMode },
		id.SetTriggeringRequest_Encoding_DefaultBinary:         func() server.Handler { return u.MonitoredItemService.SetTriggering },
		id.DeleteMonitoredItemsRequest_Encoding_DefaultBinary:  func() server.Handler { return u.MonitoredItemService.DeleteMonitoredItems },
	} {
		u.RegisterHandler(typeID, sub(f))
	}
	// The address space is the engine's: nobody adds or deletes nodes.
	refuse := func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		return nil, ua.StatusBadUserAccessDenied
	}
	for _, typeID := range []uint16{id.AddNodesRequest_Encoding_DefaultBinary, id.AddReferencesRequest_Encoding_DefaultBinary,
		id.DeleteNodesRequest_Encoding_DefaultBinary, id.DeleteReferencesRequest_Encoding_DefaultBinary,
		id.HistoryUpdateRequest_Encoding_DefaultBinary} {
		u.RegisterHandler(typeID, refuse)
	}
}

// gate refuses a request whose session was not activated by
// activateSession (BadSessionNotActivated), and, when change is set, one
// whose session may not change the line (BadUserAccessDenied).
func (s *Server) gate(change bool, h server.Handler) server.Handler {
	return func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		a, err := s.auth(r.Header())
		if err != nil {
			return nil, err
		}
		if change && !a.change {
			return nil, ua.StatusBadUserAccessDenied
		}
		return h(sc, r, reqID)
	}
}

// auth returns what the session of a request may do.
func (s *Server) auth(hdr *ua.RequestHeader) (sessionAuth, error) {
	if hdr == nil || hdr.AuthenticationToken == nil {
		return sessionAuth{}, ua.StatusBadSessionIDInvalid
	}
	sess := s.ua.Session(hdr)
	if sess == nil {
		return sessionAuth{}, ua.StatusBadSessionIDInvalid
	}
	s.sessMu.Lock()
	a, ok := s.sessions[hdr.AuthenticationToken.String()]
	s.sessMu.Unlock()
	if !ok || a.sess != any(sess) {
		return sessionAuth{}, ua.StatusBadSessionNotActivated
	}
	return a, nil
}

// Errors of identity checks, for the log (the client gets a status code).
var (
	errAnonymous   = errors.New("anonymous sessions are refused on this endpoint: sign in with the token")
	errNoUsers     = errors.New("no token is set: only anonymous sessions are accepted")
	errBadPassword = errors.New("wrong token")
)

// activateSession checks the client's identity against the token rules
// and remembers what the session may do. It replaces gopcua's, which
// accepts every identity.
func (s *Server) activateSession(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.ActivateSessionRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	sess := s.ua.Session(req.RequestHeader)
	if sess == nil {
		return nil, ua.StatusBadSessionIDInvalid
	}
	// The channel is SecurityPolicy None: there is no client signature to
	// verify (gopcua's own handler skips it for None too).
	var tok any
	if req.UserIdentityToken != nil {
		tok = req.UserIdentityToken.Value
	}
	a := sessionAuth{sess: sess, tok: req.RequestHeader.AuthenticationToken}
	var code ua.StatusCode
	var err error
	switch t := tok.(type) {
	case nil, *ua.AnonymousIdentityToken:
		if !s.anonymousAllowed() {
			code, err = ua.StatusBadIdentityTokenRejected, errAnonymous
		}
		a.change = s.anonymousMayChange()
	case *ua.UserNameIdentityToken:
		a.user, a.change = t.UserName, true
		if a.user == "" {
			a.user = "(no name)"
		}
		if s.opts.Token == "" {
			code, err = ua.StatusBadIdentityTokenRejected, errNoUsers
			break
		}
		var pw []byte
		pw, err = s.password(t, sessionNonce(sess))
		if err != nil {
			code = ua.StatusBadIdentityTokenInvalid
			break
		}
		if subtle.ConstantTimeCompare(pw, []byte(s.opts.Token)) != 1 {
			code, err = ua.StatusBadUserAccessDenied, errBadPassword
		}
	default:
		code, err = ua.StatusBadIdentityTokenInvalid, fmt.Errorf("identity token %T is not supported: use anonymous or a user name", tok)
	}
	if err != nil {
		s.log.Warn().Err(err).Str("user", a.user).Str("remote", remoteAddr(sc)).Msg("OPC UA session refused")
		return nil, code
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, ua.StatusBadInternalError
	}
	key := req.RequestHeader.AuthenticationToken.String()
	s.sessMu.Lock()
	if len(s.sessions) >= maxSessions {
		for k, v := range s.sessions { // forget sessions gopcua has closed
			if cur := s.ua.Session(&ua.RequestHeader{AuthenticationToken: v.tok}); cur == nil || any(cur) != v.sess {
				delete(s.sessions, k)
			}
		}
	}
	full := len(s.sessions) >= maxSessions
	if !full {
		s.sessions[key] = a
	}
	s.sessMu.Unlock()
	if full {
		s.log.Warn().Int("sessions", maxSessions).Msg("OPC UA session refused: too many open sessions")
		return nil, ua.StatusBadTooManySessions
	}
	s.log.Debug().Str("user", a.user).Bool("may_change", a.change).Str("remote", remoteAddr(sc)).Msg("OPC UA session activated")
	return &ua.ActivateSessionResponse{ResponseHeader: responseHeader(req.RequestHeader, ua.StatusOK), ServerNonce: nonce}, nil
}

func remoteAddr(sc *uasc.SecureChannel) string {
	if sc == nil {
		return ""
	}
	return sc.RemoteAddr().String()
}

// sessionNonce returns the nonce gopcua gave the session at
// CreateSession, which the client encrypts with the password. gopcua
// keeps it unexported; reading it is how the password's freshness is
// checked (a captured encrypted password replayed on another session is
// refused). The tests fail if a gopcua upgrade renames it.
func sessionNonce(sess any) []byte {
	v := reflect.ValueOf(sess)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName("serverNonce")
	if !f.IsValid() || f.Kind() != reflect.Slice || f.Type().Elem().Kind() != reflect.Uint8 {
		return nil
	}
	return append([]byte(nil), f.Bytes()...)
}

// password decrypts a user name token's password (Basic256Sha256:
// RSA-OAEP with SHA-1 under the server's key, over the 4-byte
// little-endian length, the password and the session nonce) and checks
// the nonce.
func (s *Server) password(t *ua.UserNameIdentityToken, nonce []byte) ([]byte, error) {
	if t.EncryptionAlgorithm == "" {
		// A client that sends the token in clear on a None channel: it
		// crossed the network readable. Refused even when right.
		return nil, errors.New("the password was not encrypted: use the username_basic256sha256 token policy")
	}
	if t.EncryptionAlgorithm != passwordAlg {
		return nil, fmt.Errorf("password encryption %q is not supported: want %s", t.EncryptionAlgorithm, passwordAlg)
	}
	if len(nonce) == 0 {
		return nil, errors.New("the session has no nonce to check the password against")
	}
	k := s.key.Size()
	if len(t.Password) == 0 || len(t.Password)%k != 0 {
		return nil, fmt.Errorf("encrypted password of %d bytes: want a multiple of %d", len(t.Password), k)
	}
	var plain []byte
	for b := t.Password; len(b) > 0; b = b[k:] {
		p, err := rsa.DecryptOAEP(sha1.New(), nil, s.key, b[:k], nil)
		if err != nil {
			return nil, fmt.Errorf("decrypt password: %w", err)
		}
		plain = append(plain, p...)
	}
	if len(plain) < 4 {
		return nil, errors.New("decrypted password too short")
	}
	n := int(binary.LittleEndian.Uint32(plain))
	body := plain[4:]
	if n != len(body) || n < len(nonce) {
		return nil, fmt.Errorf("decrypted password says %d bytes, has %d", n, len(body))
	}
	pw, got := body[:n-len(nonce)], body[n-len(nonce):]
	if subtle.ConstantTimeCompare(got, nonce) != 1 {
		return nil, errors.New("the password was encrypted for another session (nonce mismatch)")
	}
	return pw, nil
}

func responseHeader(req *ua.RequestHeader, code ua.StatusCode) *ua.ResponseHeader {
	var handle uint32
	if req != nil {
		handle = req.RequestHandle
	}
	return &ua.ResponseHeader{
		Timestamp:          time.Now(),
		RequestHandle:      handle,
		ServiceResult:      code,
		ServiceDiagnostics: &ua.DiagnosticInfo{},
		StringTable:        []string{},
		AdditionalHeader:   ua.NewExtensionObject(nil),
	}
}
