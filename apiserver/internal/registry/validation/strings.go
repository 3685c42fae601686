// Package validation holds regex-free, allocation-light equivalents of the
// hot k8s.io/apimachinery validation helpers (DNS names, label keys and
// values, env var names, port names, object metadata).
//
// Every checker follows the same pattern: a byte loop decides whether the
// value is valid; only when it is not is the apimachinery function called to
// build the error messages. The fast predicates are written so that "valid"
// here always implies "valid" upstream (the differential and fuzz tests
// assert full equality), so the returned messages are, by construction,
// exactly apimachinery's, and the success path performs no regexp matching
// and no allocation.
package validation

import (
	"strings"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
)

// ValidateNameFunc is apimachinery's name validator type, aliased so the
// functions below can be returned from strategies' NameValidator.
type ValidateNameFunc = apivalidation.ValidateNameFunc

const (
	dns1123LabelMaxLength     = 63  // utilvalidation.DNS1123LabelMaxLength
	dns1123SubdomainMaxLength = 253 // utilvalidation.DNS1123SubdomainMaxLength
	labelKeyNameMaxLength     = 63  // content.labelKeyMaxLength
	labelValueMaxLength       = 63  // content.LabelValueMaxLength
	portNameMaxLength         = 15
)

// Character classes, one bit each, looked up in charClass.
const (
	cLower uint8 = 1 << iota
	cUpper
	cDigit
	cDash
	cDot
	cUnderscore

	cLowerAlnum = cLower | cDigit
	cAlnum      = cLower | cUpper | cDigit
	cLabelExt   = cAlnum | cDash | cDot | cUnderscore // [-A-Za-z0-9_.]
	cDNS        = cLowerAlnum | cDash                 // [-a-z0-9]
	cEnvFirst   = cLower | cUpper | cDash | cDot | cUnderscore
	cEnv        = cEnvFirst | cDigit
)

var charClass = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = cLower
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = cUpper
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = cDigit
	}
	t['-'] = cDash
	t['.'] = cDot
	t['_'] = cUnderscore
	return t
}()

type text interface{ ~string | ~[]byte }

// dnsLabel matches ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ with at most 63 bytes.
func dnsLabel[T text](s T) bool {
	n := len(s)
	if n == 0 || n > dns1123LabelMaxLength {
		return false
	}
	if charClass[s[0]]&cLowerAlnum == 0 || charClass[s[n-1]]&cLowerAlnum == 0 {
		return false
	}
	for i := 1; i < n-1; i++ {
		if charClass[s[i]]&cDNS == 0 {
			return false
		}
	}
	return true
}

// dnsSubdomain matches dot-separated DNS labels (no per-label length limit,
// exactly like the upstream regex), at most 253 bytes in total. With upper
// set, A-Z are accepted too (for annotation keys, which are lowercased
// before validation).
func dnsSubdomain[T text](s T, upper bool) bool {
	n := len(s)
	if n == 0 || n > dns1123SubdomainMaxLength {
		return false
	}
	alnum, chars := cLowerAlnum, cDNS|cDot
	if upper {
		alnum |= cUpper
		chars |= cUpper
	}
	// Every label starts and ends with an alphanumeric: the string must, and
	// a '.' may only sit between two alphanumerics.
	if charClass[s[0]]&alnum == 0 || charClass[s[n-1]]&alnum == 0 {
		return false
	}
	for i := 1; i < n-1; i++ {
		c := charClass[s[i]]
		if c&chars == 0 {
			return false
		}
		if c == cDot && (charClass[s[i-1]]&alnum == 0 || charClass[s[i+1]]&alnum == 0) {
			return false
		}
	}
	return true
}

// labelName matches ^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$ with at most
// 63 bytes: a label key's name part and a non-empty label value.
func labelName(s string) bool {
	n := len(s)
	if n == 0 || n > labelKeyNameMaxLength {
		return false
	}
	if charClass[s[0]]&cAlnum == 0 || charClass[s[n-1]]&cAlnum == 0 {
		return false
	}
	for i := 1; i < n-1; i++ {
		if charClass[s[i]]&cLabelExt == 0 {
			return false
		}
	}
	return true
}

// qualifiedName reports whether s is a valid label key: [prefix/]name. With
// upperPrefix, the prefix may contain A-Z (annotation keys).
func qualifiedName(s string, upperPrefix bool) bool {
	slash := strings.IndexByte(s, '/')
	if slash < 0 {
		return labelName(s)
	}
	name := s[slash+1:]
	return strings.IndexByte(name, '/') < 0 && dnsSubdomain(s[:slash], upperPrefix) && labelName(name)
}

func labelValue(s string) bool {
	return s == "" || labelName(s)
}

// IsDNS1123Label is utilvalidation.IsDNS1123Label.
func IsDNS1123Label(value string) []string {
	if dnsLabel(value) {
		return nil
	}
	return utilvalidation.IsDNS1123Label(value)
}

// IsDNS1123Subdomain is utilvalidation.IsDNS1123Subdomain.
func IsDNS1123Subdomain(value string) []string {
	if dnsSubdomain(value, false) {
		return nil
	}
	return utilvalidation.IsDNS1123Subdomain(value)
}

// IsQualifiedName is utilvalidation.IsQualifiedName (content.IsLabelKey).
func IsQualifiedName(value string) []string {
	if qualifiedName(value, false) {
		return nil
	}
	return utilvalidation.IsQualifiedName(value)
}

// IsValidLabelValue is utilvalidation.IsValidLabelValue (content.IsLabelValue).
func IsValidLabelValue(value string) []string {
	if labelValue(value) {
		return nil
	}
	return utilvalidation.IsValidLabelValue(value)
}

// IsEnvVarName is utilvalidation.IsEnvVarName: ^[-._a-zA-Z][-._a-zA-Z0-9]*$
// and not ".", ".." or starting with "..".
func IsEnvVarName(value string) []string {
	if envVarName(value) {
		return nil
	}
	return utilvalidation.IsEnvVarName(value)
}

func envVarName(s string) bool {
	n := len(s)
	if n == 0 || charClass[s[0]]&cEnvFirst == 0 || s == "." || strings.HasPrefix(s, "..") {
		return false
	}
	for i := 1; i < n; i++ {
		if charClass[s[i]]&cEnv == 0 {
			return false
		}
	}
	return true
}

// IsValidPortName is utilvalidation.IsValidPortName: 1-15 bytes of
// [-a-z0-9], at least one letter, no leading, trailing or double '-'.
func IsValidPortName(port string) []string {
	if portName(port) {
		return nil
	}
	return utilvalidation.IsValidPortName(port)
}

func portName(s string) bool {
	n := len(s)
	if n == 0 || n > portNameMaxLength || s[0] == '-' || s[n-1] == '-' {
		return false
	}
	letter := false
	for i := 0; i < n; i++ {
		c := charClass[s[i]]
		switch {
		case c == cLower:
			letter = true
		case c == cDigit:
		case c == cDash:
			if s[i-1] == '-' { // i > 0: s[0] is not '-'
				return false
			}
		default:
			return false
		}
	}
	return letter
}

// IsConfigMapKey is utilvalidation.IsConfigMapKey: at most 253 bytes of
// [-._a-zA-Z0-9], not ".", ".." or starting with "..".
func IsConfigMapKey(value string) []string {
	if configMapKey(value) {
		return nil
	}
	return utilvalidation.IsConfigMapKey(value)
}

func configMapKey(s string) bool {
	n := len(s)
	if n == 0 || n > dns1123SubdomainMaxLength || s == "." || strings.HasPrefix(s, "..") {
		return false
	}
	for i := 0; i < n; i++ {
		if charClass[s[i]]&cLabelExt == 0 {
			return false
		}
	}
	return true
}

// IsHTTPHeaderName is utilvalidation.IsHTTPHeaderName: ^[-A-Za-z0-9]+$.
func IsHTTPHeaderName(value string) []string {
	if httpHeaderName(value) {
		return nil
	}
	return utilvalidation.IsHTTPHeaderName(value)
}

func httpHeaderName(s string) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if charClass[s[i]]&(cAlnum|cDash) == 0 {
			return false
		}
	}
	return true
}

// IsValidPercent is utilvalidation.IsValidPercent: ^[0-9]+%$.
func IsValidPercent(percent string) []string {
	if validPercent(percent) {
		return nil
	}
	return utilvalidation.IsValidPercent(percent)
}

func validPercent(s string) bool {
	n := len(s)
	if n < 2 || s[n-1] != '%' {
		return false
	}
	for i := 0; i < n-1; i++ {
		if charClass[s[i]] != cDigit {
			return false
		}
	}
	return true
}

// NameIsDNSSubdomain is apivalidation.NameIsDNSSubdomain: with prefix (a
// generateName), a trailing '-' is masked as upstream does (the last two
// bytes become "a").
func NameIsDNSSubdomain(name string, prefix bool) []string {
	if prefix && len(name) > 1 && name[len(name)-1] == '-' {
		if len(name)-1 <= dns1123SubdomainMaxLength {
			var buf [dns1123SubdomainMaxLength]byte
			masked := append(append(buf[:0], name[:len(name)-2]...), 'a')
			if dnsSubdomain(masked, false) {
				return nil
			}
		}
	} else if dnsSubdomain(name, false) {
		return nil
	}
	return apivalidation.NameIsDNSSubdomain(name, prefix)
}

// NameIsDNSLabel is apivalidation.NameIsDNSLabel (and ValidateNamespaceName),
// with the same generateName masking as NameIsDNSSubdomain.
func NameIsDNSLabel(name string, prefix bool) []string {
	if prefix && len(name) > 1 && name[len(name)-1] == '-' {
		if len(name)-1 <= dns1123LabelMaxLength {
			var buf [dns1123LabelMaxLength]byte
			masked := append(append(buf[:0], name[:len(name)-2]...), 'a')
			if dnsLabel(masked) {
				return nil
			}
		}
	} else if dnsLabel(name) {
		return nil
	}
	return apivalidation.NameIsDNSLabel(name, prefix)
}

// ValidateNamespaceName is apivalidation.ValidateNamespaceName.
func ValidateNamespaceName(name string, prefix bool) []string {
	return NameIsDNSLabel(name, prefix)
}
