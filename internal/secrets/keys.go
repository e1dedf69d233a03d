package secrets

import (
	"hash/maphash"
	"strings"
	"sync/atomic"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/secrets/keywords"
)

// secretWords are words (or adjacent words joined) of a key that make its
// value a secret.
var secretWords = []string{
	"password", "passwords", "passwd", "passphrase", "pwd", "pass",
	"secret", "secrets", "token", "auth", "authorization", "cookie", "cookies",
	"credential", "credentials", "creds", "jwt", "bearer",
	"apikey", "privatekey", "privkey", "secretkey", "accesskey", "authkey",
	"signingkey", "encryptionkey", "masterkey", "sessionkey", "accountkey",
	"connectionstring", "setcookie", "storepass", "keypass", "srcstorepass", "deststorepass", "srckeypass",
	"destkeypass", "dockerconfigjson", "dockercfg", "psk", "presharedkey", "clientkey", "sshkey",
}

// embeddedWords make a key secret even inside a longer word (PGPASSWORD,
// dbpassword, clientsecret).
var embeddedWords = []string{"password", "passwd", "passphrase", "secret"}

// metadataWords, as the last word of a key, say the value describes a secret
// rather than being one (token_ttl, password_file, secret_name).
var metadataWords = map[string]struct{}{}

func init() {
	for _, w := range strings.Fields(`ttl expiry expires expiration expire exp expiresin length len size count
		file files path dir filename name names type id ids enabled enable disabled required policy min max
		timeout age url uri endpoint hint set changed updated rotation rotated at time date format method mode
		provider prompt strength version env source ref location algorithm algo header field param kind used
		usage limit seconds secs days hours minutes interval period stdin from strategy store backend manager
		template label labels annotation present exists valid validity arn arns ref refs mechanism mechanisms
		method methods scheme schemes realm plugin plugins server servers host hosts port database domain protocol
		level var vars variable variables status state error errors message msg result check flow flows grant
		issuer audience service user username email lifetime encoding encoder complexity history reset`) {
		metadataWords[w] = struct{}{}
	}
}

// keyClassifier decides whether a key (attribute, map key, or the key of an
// assignment found in text) names a secret.
type keyClassifier struct {
	stems   *keywords.Matcher // cheap reject: keys with no stem are never secret
	words   map[string]struct{}
	extra   map[string]struct{}
	embeds  []string
	allowed map[string]struct{}
	cache   *verdictCache
}

// verdictCache remembers the verdicts on short keys: telemetry repeats a
// few hundred attribute names, each of which the classifier would split,
// lower-case and look up again. A slot is filled once and never replaced,
// so a full cache costs a hash and no allocation; a miss classifies.
type verdictCache struct {
	seed  maphash.Seed
	slots [verdictSlots]atomic.Pointer[verdict]
}

type verdict struct {
	key    string
	secret bool
}

const (
	verdictSlots  = 4096 // a power of two
	maxCachedKey  = 64
	verdictProbes = 4
)

func newKeyClassifier(extraKeys []string) (*keyClassifier, error) {
	kc := &keyClassifier{
		words:  map[string]struct{}{},
		extra:  map[string]struct{}{},
		embeds: embeddedWords,
	}
	stems := []string{"pass", "pwd", "secret", "token", "key", "auth", "cookie", "cred", "jwt", "bearer", "connectionstring"}
	for _, w := range secretWords {
		kc.words[w] = struct{}{}
	}
	for _, k := range extraKeys {
		normalized := normalizeKey(k)
		if normalized == "" {
			continue
		}
		kc.extra[normalized] = struct{}{}
		stems = append(stems, strings.FieldsFunc(strings.ToLower(k), func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
		})...)
	}
	m, err := keywords.New([][]string{stems})
	if err != nil {
		return nil, err
	}
	kc.stems = m
	kc.cache = &verdictCache{seed: maphash.MakeSeed()}
	return kc, nil
}

const maxKeyWords = 16

// keyQualifiers name keys whose "<word>_key" is no secret: identifiers of
// records, objects and public material (primary_key, s3_key, host_key).
var keyQualifiers = map[string]struct{}{}

// joinedKeyWords are one-word key names ending in "key" that hold key
// material (sshkey, clientkey); others (monkey, hotkey) do not.
var joinedKeyWords = map[string]struct{}{}

func init() {
	for _, w := range strings.Fields(`public pub primary foreign sort partition cache idempotency lookup routing
		index unique hash range row map dict object group dedup dedupe composite natural surrogate join shard
		bucket s3 prefix message event item entry registry host known authorized kms apt rpm gpg pgp yum repo
		translation i18n label tag attribute attr metric field column state resource config setting option
		node dns hot short sub parent child next prev previous first last default task step recv trusted`) {
		keyQualifiers[w] = struct{}{}
	}
	for _, w := range strings.Fields(`sshkey clientkey tlskey sslkey deploykey licensekey hmackey appkey
		sharedkey rootkey storagekey servicekey userkey serverkey`) {
		joinedKeyWords[w] = struct{}{}
	}
}

// IsSecret reports whether the value under key is a secret.
func (kc *keyClassifier) IsSecret(key string) bool {
	if kc.cache == nil || len(key) > maxCachedKey {
		return kc.classify(key)
	}
	h := maphash.String(kc.cache.seed, key)
	for probe := range uint64(verdictProbes) {
		slot := &kc.cache.slots[(h+probe)&(verdictSlots-1)]
		v := slot.Load()
		if v == nil {
			secret := kc.classify(key)
			// Another goroutine may fill the slot first: then this key
			// stays uncached, which costs time only.
			slot.CompareAndSwap(nil, &verdict{strings.Clone(key), secret})
			return secret
		}
		if v.key == key {
			return v.secret
		}
	}
	return kc.classify(key)
}

func (kc *keyClassifier) classify(key string) bool {
	if key == "" {
		return false
	}
	// A sentence used as a map key ("AKIA is the access key prefix")
	// talks about a secret; it does not name a value that is one.
	if strings.IndexByte(key, ' ') >= 0 && isProse(key) {
		return false
	}
	var found keywords.Set
	kc.stems.Scan(key, &found)
	if found.Empty() {
		return false
	}
	var buf [128]byte
	lowered := buf[:0]
	if len(key) > cap(buf) {
		lowered = make([]byte, 0, len(key)) // long keys are rare: they may allocate
	}
	lowered = lowerInto(lowered, key)
	var wordBuf [maxKeyWords][2]int
	words := wordBuf[:0]
	words = splitWords(key, words)
	n := len(words)
	if n == 0 {
		return false
	}
	word := func(i int) []byte { return lowered[words[i][0]:words[i][1]] }
	last := word(n - 1)
	if _, ok := metadataWords[string(last)]; ok {
		// secret_id (Vault AppRole) is the credential, not its name.
		// (--secret-id in cloud CLIs names a stored secret instead)
		if !(string(last) == "id" && n > 1 && string(word(n-2)) == "secret" && !strings.Contains(key, "-")) {
			return false
		}
	}
	if n == 1 {
		// Alone, these name something else: $PWD is a directory.
		if string(last) == "pwd" || string(last) == "oldpwd" {
			return false
		}
		if _, ok := joinedKeyWords[string(last)]; ok {
			return true
		}
	}
	switch string(word(0)) {
	case "no", "ask", "public", "pub":
		return false // --no-password, public_key
	}
	for i := 0; i < n; i++ {
		if string(word(i)) == "existing" {
			return false // auth.existingSecret names a Secret object
		}
	}
	// <qualifier>_key: client_key, encryption_key, ssh_key; not public_key,
	// primary_key, nor "key" alone (loop items, object keys).
	if (string(last) == "key" || string(last) == "keys") && n > 1 {
		if _, ok := keyQualifiers[string(word(n-2))]; !ok {
			return true
		}
	}
	for i := 0; i < n; i++ {
		w := lowered[words[i][0]:words[i][1]]
		if kc.isWord(w) {
			return true
		}
		// Adjacent words joined: api_key, private-key, AccountKey, and user
		// key names of up to three words.
		var joined [128]byte
		p := append(joined[:0], w...)
		for j := i + 1; j < n && j < i+3; j++ {
			p = append(p, lowered[words[j][0]:words[j][1]]...)
			if kc.isWord(p) {
				return true
			}
		}
	}
	return false
}

// normalizeKey lower-cases a configured key name and drops separators, the
// form in which IsSecret compares joined words.
func normalizeKey(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		if c := lowerByte(k[i]); isLower(c) || isDigit(c) {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (kc *keyClassifier) isWord(w []byte) bool {
	if _, ok := kc.words[string(w)]; ok {
		return true
	}
	if _, ok := kc.extra[string(w)]; ok {
		return true
	}
	for _, e := range kc.embeds {
		if len(w) > len(e) && strings.Contains(string(w), e) {
			return true
		}
	}
	return false
}

// lowerInto appends the ASCII lower case of s (at most cap(dst) bytes) to dst.
func lowerInto(dst []byte, s string) []byte {
	if len(s) > cap(dst) {
		s = s[:cap(dst)]
	}
	for i := 0; i < len(s); i++ {
		dst = append(dst, lowerByte(s[i]))
	}
	return dst
}

func lowerByte(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

func isLower(b byte) bool { return 'a' <= b && b <= 'z' }
func isUpper(b byte) bool { return 'A' <= b && b <= 'Z' }
func isDigit(b byte) bool { return '0' <= b && b <= '9' }
func isAlnum(b byte) bool { return isLower(b) || isUpper(b) || isDigit(b) }

// splitWords appends the words of a key, split at non-alphanumerics and
// camelCase boundaries (dbPassword, APIKey, AWS_SECRET_ACCESS_KEY). Keys of
// more words than the buffer holds grow it (rare).
func splitWords(key string, words [][2]int) [][2]int {
	start := -1
	for i := 0; i <= len(key); i++ {
		boundary := i == len(key) || !isAlnum(key[i])
		camel := false
		if !boundary && start >= 0 && i > start {
			prev := key[i-1]
			if isUpper(key[i]) && (isLower(prev) || isDigit(prev)) {
				camel = true
			}
			if isUpper(key[i]) && isUpper(prev) && i+1 < len(key) && isLower(key[i+1]) {
				camel = true
			}
		}
		if (boundary || camel) && start >= 0 {
			words = append(words, [2]int{start, i})
			start = -1
		}
		if !boundary && start < 0 {
			start = i
		}
	}
	return words
}

// defaultKeys is the built-in vocabulary, shared by every caller that has no
// configured extra keys (the deployer's variable and environment names).
var defaultKeys = func() *keyClassifier {
	kc, err := newKeyClassifier(nil)
	if err != nil {
		panic(err) // the built-in stems always compile
	}
	return kc
}()

// IsSecretKey reports whether a value under key (an attribute, map key,
// variable or environment variable name) is a secret, by the built-in
// vocabulary: the one definition of a secret-looking name in the project.
func IsSecretKey(key string) bool { return defaultKeys.IsSecret(key) }
