package secrets

import (
	"encoding/base64"
	"strings"
)

// toolFlag describes how a command-line tool takes a password.
type toolFlag struct {
	// flags take the secret as the next argument, or attached after "="
	// for long flags ("--password=x").
	flags []string
	// attached flags carry it in the same argument ("-pSECRET").
	attached []string
	// positional: the secret is the n-th non-flag argument after the
	// tool (1-based), when the subcommand (if any) is given.
	positional int
	subcommand string
	// needFlag: positional applies only when an argument starts with
	// "-" and holds this letter (htpasswd -b).
	needFlag byte
	// userPercent: "-U user%password" (Samba).
	userPercent string
}

// passwordTools are tools whose password arguments have no secret-looking
// name (-p, -a, -w, -P), found by scanning the command line they start.
var passwordTools = map[string]toolFlag{
	"docker":       {flags: []string{"-p"}, subcommand: "login"},
	"podman":       {flags: []string{"-p"}, subcommand: "login"},
	"nerdctl":      {flags: []string{"-p"}, subcommand: "login"},
	"buildah":      {flags: []string{"-p"}, subcommand: "login"},
	"skopeo":       {flags: []string{"-p"}, subcommand: "login"},
	"helm":         {flags: []string{"-p"}, subcommand: "login"},
	"oras":         {flags: []string{"-p"}, subcommand: "login"},
	"oc":           {flags: []string{"-p"}, subcommand: "login"},
	"cf":           {flags: []string{"-p"}, subcommand: "login"},
	"az":           {flags: []string{"-p"}, subcommand: "login"},
	"redis-cli":    {flags: []string{"-a", "--pass"}},
	"mysql":        {attached: []string{"-p"}},
	"mysqldump":    {attached: []string{"-p"}},
	"mysqladmin":   {attached: []string{"-p"}},
	"mariadb":      {attached: []string{"-p"}},
	"sqlcmd":       {flags: []string{"-P"}},
	"bcp":          {flags: []string{"-P"}},
	"mongo":        {flags: []string{"-p"}},
	"mongosh":      {flags: []string{"-p"}},
	"mongodump":    {flags: []string{"-p"}},
	"mongorestore": {flags: []string{"-p"}},
	"mongoexport":  {flags: []string{"-p"}},
	"mongoimport":  {flags: []string{"-p"}},
	"ldapsearch":   {flags: []string{"-w"}},
	"ldapmodify":   {flags: []string{"-w"}},
	"ldapadd":      {flags: []string{"-w"}},
	"ldapdelete":   {flags: []string{"-w"}},
	"ldappasswd":   {flags: []string{"-w", "-s"}},
	"ipmitool":     {flags: []string{"-P"}},
	"zip":          {flags: []string{"-P", "--password"}},
	"unzip":        {flags: []string{"-P"}},
	"7z":           {attached: []string{"-p"}},
	"7za":          {attached: []string{"-p"}},
	"rar":          {attached: []string{"-p", "-hp"}},
	"unrar":        {attached: []string{"-p"}},
	"smbclient":    {userPercent: "-U"},
	"influx":       {flags: []string{"-password"}},
	"sshpass":      {flags: []string{"-p"}, attached: []string{"-p"}},
	"htpasswd":     {positional: 3, needFlag: 'b'},
	"rabbitmqctl":  {positional: 2, subcommand: "add_user"},
	"vncpasswd":    {flags: []string{"-f"}},
	"openssl":      {flags: []string{"-k"}},
}

// toolKeywords gate findToolPassword.
var toolKeywords = func() []string {
	out := make([]string, 0, len(passwordTools))
	for name := range passwordTools {
		out = append(out, name)
	}
	return out
}()

// findToolPassword scans a command line (or an argv joined by blanks) for
// the password arguments of passwordTools, up to the next shell separator.
func findToolPassword(text string, from int, _ Scanner) (start, end, next int) {
	var tool toolFlag
	inTool, afterSub, positional := false, false, 0
	flagSeen := false
	takeNext := false
	for i := from; i < len(text); {
		ts, te, nx := nextTokenEnd(text, i)
		if ts < 0 {
			break
		}
		tok := strings.Trim(text[ts:te], `"'`)
		i = nx
		if isShellSeparator(tok) {
			inTool, takeNext = false, false
			continue
		}
		if takeNext {
			takeNext = false
			vs, ve := unquote(text, ts, te)
			if !isPlaceholder(text[vs:ve]) && !strings.HasPrefix(text[vs:ve], "-") {
				return vs, ve, te
			}
			continue
		}
		if t, ok := passwordTools[baseName(tok)]; ok {
			tool, inTool, afterSub, positional, flagSeen = t, true, t.subcommand == "", 0, false
			continue
		}
		if !inTool {
			continue
		}
		if !afterSub {
			afterSub = tok == tool.subcommand
			continue
		}
		if strings.HasPrefix(tok, "-") && len(tok) > 1 {
			if tool.needFlag != 0 && !strings.HasPrefix(tok, "--") && strings.IndexByte(tok, tool.needFlag) > 0 {
				flagSeen = true
			}
			for _, f := range tool.flags {
				if tok == f {
					takeNext = true
				} else if strings.HasPrefix(f, "--") && strings.HasPrefix(tok, f+"=") {
					vs, ve := unquote(text, ts+len(f)+1, te)
					if vs < ve && !isPlaceholder(text[vs:ve]) {
						return vs, ve, te
					}
				}
			}
			for _, f := range tool.attached {
				if strings.HasPrefix(tok, f) && len(tok) > len(f) && !isLetterFlagRun(tok[len(f):]) {
					vs, ve := unquote(text, ts+len(f), te)
					if vs < ve && !isPlaceholder(text[vs:ve]) {
						return vs, ve, te
					}
				}
			}
			if tool.userPercent != "" && tok == tool.userPercent {
				us, ue := nextToken(text, te)
				if us >= 0 {
					if pct := strings.IndexByte(text[us:ue], '%'); pct > 0 {
						vs, ve := unquote(text, us, ue)
						vs = us + pct + 1
						if vs < ve && !isPlaceholder(text[vs:ve]) {
							return vs, ve, ue
						}
					}
				}
			}
			continue
		}
		if tool.positional > 0 && (tool.needFlag == 0 || flagSeen) {
			positional++
			want := tool.positional
			if tool.needFlag == 'b' && htpasswdNoFile(text, from, ts) {
				want-- // htpasswd -nb USER PASSWORD prints instead of writing a file
			}
			if positional == want {
				vs, ve := unquote(text, ts, te)
				if !isPlaceholder(text[vs:ve]) {
					return vs, ve, te
				}
			}
		}
	}
	return -1, 0, len(text)
}

// htpasswdNoFile: an "-n" flag letter among the arguments before pos.
func htpasswdNoFile(text string, from, pos int) bool {
	for i := from; i < pos; {
		ts, te, nx := nextTokenEnd(text, i)
		if ts < 0 || ts >= pos {
			break
		}
		if tok := text[ts:te]; strings.HasPrefix(tok, "-") && !strings.HasPrefix(tok, "--") && strings.IndexByte(tok, 'n') > 0 {
			return true
		}
		i = nx
	}
	return false
}

// isLetterFlagRun: "-p" followed by more flag letters is not a password in
// an attached form only when it is a known word ("-port", "-print").
func isLetterFlagRun(rest string) bool {
	switch rest {
	case "ort", "rint", "rompt", "assword", "lugin", "rotocol", "ipe", "retty":
		return true
	}
	return false
}

// nextToken returns the next blank-separated token at or after i, without
// the JSON array punctuation around it (`"-a",` is -a); ts < 0 when none.
func nextToken(text string, i int) (ts, te int) {
	ts, te, _ = nextTokenEnd(text, i)
	return ts, te
}

// nextTokenEnd is nextToken that also returns where the raw token ends,
// where the next search starts (trimming may leave ts == te).
func nextTokenEnd(text string, i int) (ts, te, next int) {
	for i < len(text) && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r') {
		i++
	}
	if i >= len(text) {
		return -1, 0, len(text)
	}
	ts = i
	for i < len(text) && text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r' {
		i++
	}
	te, next = i, i
	// ["mysql", "-pX"] and (item=cmd ...): drop the punctuation that
	// belongs to the list or the log line, not to the argument.
	for ts < te && (text[ts] == '[' || text[ts] == '(') {
		ts++
	}
	for te > ts && (text[te-1] == ',' || text[te-1] == ']' || text[te-1] == ')' && !strings.Contains(text[ts:te-1], "(")) {
		te--
	}
	if te-ts >= 2 && (text[ts] == '"' || text[ts] == '\'') && text[te-1] == text[ts] {
		return ts, te, next
	}
	for ts < te && (text[ts] == '"' || text[ts] == '\'' || text[ts] == '\\') && strings.IndexByte(text[ts+1:te], text[ts]) < 0 {
		ts++
	}
	for te > ts && (text[te-1] == '"' || text[te-1] == '\'' || text[te-1] == '\\') && strings.IndexByte(text[ts:te-1], text[te-1]) < 0 {
		te--
	}
	return ts, te, next
}

func isShellSeparator(tok string) bool {
	switch tok {
	case "|", "||", "&&", ";", "&", "then", "do":
		return true
	}
	return strings.HasSuffix(tok, ";")
}

// baseName is the program name of a token: /usr/bin/mysql, "mysql", [mysql,
func baseName(tok string) string {
	if i := strings.LastIndexAny(tok, "=(['\""); i >= 0 {
		tok = tok[i+1:]
	}
	tok = strings.Trim(tok, `"'[],`)
	if i := strings.LastIndexByte(tok, '/'); i >= 0 {
		tok = tok[i+1:]
	}
	return tok
}

// findOracleConnect finds the password of user/password@db connect strings
// after Oracle tools (sqlplus scott/tiger@orcl, userid=u/p@db).
func findOracleConnect(text string, from int, _ Scanner) (start, end, next int) {
	lower := text // tools are matched case-insensitively below
	for i := from; i < len(text); {
		ts, te, nx := nextTokenEnd(text, i)
		if ts < 0 {
			break
		}
		i = nx
		tok := strings.ToLower(baseName(lower[ts:te]))
		userid := strings.HasPrefix(strings.ToLower(text[ts:te]), "userid=")
		if !userid && !oracleTools[tok] {
			continue
		}
		// The connect string is the next non-flag argument (or userid=).
		cs, ce, cn := ts, te, nx
		if !userid {
			for {
				cs, ce, cn = nextTokenEnd(text, cn)
				if cs < 0 {
					return -1, 0, len(text)
				}
				arg := text[cs:ce]
				if strings.HasPrefix(arg, "-") || oracleWords[strings.ToLower(arg)] {
					continue
				}
				break
			}
		}
		i = max(i, cn)
		if len(text[cs:ce]) > 7 && strings.EqualFold(text[cs:cs+7], "userid=") {
			cs += len("userid=")
		}
		arg := text[cs:ce]
		arg = strings.Trim(arg, `"'`)
		off := cs + strings.Index(text[cs:ce], arg)
		slash := strings.IndexByte(arg, '/')
		at := strings.LastIndexByte(arg, '@')
		if slash <= 0 || at <= slash+1 || strings.HasPrefix(arg, "/") {
			continue
		}
		if !isIdentifier(arg[:slash]) || isPlaceholder(arg[slash+1:at]) {
			continue
		}
		return off + slash + 1, off + at, cn
	}
	return -1, 0, len(text)
}

var oracleTools = map[string]bool{"sqlplus": true, "sqlldr": true, "expdp": true, "impdp": true, "exp": true, "imp": true,
	"rman": true, "dgmgrl": true, "sql": true, "connect": true, "conn": true, "tkprof": true}

var oracleWords = map[string]bool{"target": true, "auxiliary": true, "catalog": true, "-s": true, "-l": true}

var oracleKeywords = []string{"sqlplus", "sqlldr", "expdp", "impdp", "exp ", "imp ", "rman", "dgmgrl", "sql ", "connect ", "conn ", "userid="}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '_' || c == '$' || c == '#' || c == '.') {
			return false
		}
	}
	return true
}

// privateKeyDERMarkers are base64 fragments at fixed places of DER private
// keys (PKCS#1 RSA, PKCS#8, SEC1 EC, Ed25519, OpenSSH, encrypted PKCS#8):
// a base64 key block without its PEM header still starts with one.
var privateKeyDERMarkers = []string{
	"IBAAK", "IBADANBgkqhkiG9w0BAQEFAAS", "AgEAMBMGByqGSM49AgEG", "MHcCAQEEI", "MIGkAgEBBDA",
	"MC4CAQAwBQYDK2VwBCIEI", "b3BlbnNzaC1rZXktdjE", "BgkqhkiG9w0BBQ0w",
}

// findBase64PrivateKey masks a base64 block of private key material: from
// the start of the base64 run holding a marker through the following lines
// that are base64 too.
func findBase64PrivateKey(text string, from int, _ Scanner) (start, end, next int) {
	// Next occurrence of each marker, searched again only once passed, so
	// the scan stays linear.
	var at [8]int
	for i := range at {
		at[i] = -2
	}
	for from < len(text) {
		best := -1
		for i, m := range privateKeyDERMarkers {
			if at[i] == -2 || at[i] >= 0 && at[i] < from {
				at[i] = -1
				if j := strings.Index(text[from:], m); j >= 0 {
					at[i] = from + j
				}
			}
			if at[i] >= 0 && (best < 0 || at[i] < best) {
				best = at[i]
			}
		}
		if best < 0 {
			return -1, 0, len(text)
		}
		s := best
		for s > 0 && isBase64Byte(text[s-1]) {
			s--
		}
		e := best
		for e < len(text) && isBase64Byte(text[e]) {
			e++
		}
		if !derKeyStart(text[s:e]) {
			from = e
			continue
		}
		// Following lines of base64 belong to the block.
		for e < len(text) {
			j := e
			for j < len(text) && (text[j] == '\n' || text[j] == '\r' || text[j] == ' ' || text[j] == '\t' || text[j] == '\\' && j+1 < len(text) && text[j+1] == 'n' && (j+1 == e || true)) {
				if text[j] == '\\' {
					j++
				}
				j++
			}
			k := j
			for k < len(text) && isBase64Byte(text[k]) {
				k++
			}
			if j == e || k-j < 4 || (k < len(text) && text[k] != '\n' && text[k] != '\r' && text[k] != '\\' && text[k] != '"' && text[k] != ' ') {
				break
			}
			e = k
		}
		return s, e, e
	}
	return -1, 0, len(text)
}

// derKeyStart: the run decodes to a DER SEQUENCE (0x30) or an OpenSSH key.
func derKeyStart(run string) bool {
	if strings.HasPrefix(run, "b3BlbnNzaC1rZXktdjE") {
		return true
	}
	if len(run) < 16 {
		return false
	}
	head, err := base64.StdEncoding.DecodeString(run[:16])
	return err == nil && head[0] == 0x30
}

func isBase64Byte(c byte) bool { return isAlnum(c) || c == '+' || c == '/' || c == '=' }

// base64SecretKeywords are the three alignments of base64 of words that
// mark secrets in encoded configuration (.dockerconfigjson's "auths",
// password, secret, token): a base64 run holding one is decoded and scanned.
var base64SecretKeywords = func() []string {
	var out []string
	for _, w := range []string{`"auths"`, "password", "passwd", "secret", "token", "PRIVATE KEY", "Password", "SECRET", "TOKEN", "PASSWORD"} {
		for pad := 0; pad < 3; pad++ {
			enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x00", pad) + w))
			// drop the characters that depend on the padding bytes and
			// on what follows the word
			lo := (pad*4 + 2) / 3
			hi := len(enc) - 4
			if hi-lo >= 6 {
				out = append(out, strings.ToLower(enc[lo:hi]))
			}
		}
	}
	return out
}()

// findEncodedSecret decodes base64 runs that hold an encoded secret word
// and masks the run when the decoded text holds a secret.
func findEncodedSecret(text string, from int, sc Scanner) (start, end, next int) {
	for i := from; i < len(text); {
		for i < len(text) && !isBase64Byte(text[i]) && text[i] != '-' && text[i] != '_' {
			i++
		}
		s := i
		for i < len(text) && (isBase64Byte(text[i]) || text[i] == '-' || text[i] == '_') {
			i++
		}
		if i-s < 16 {
			continue
		}
		run := strings.TrimRight(text[s:i], "=")
		var dec []byte
		var err error
		if strings.ContainsAny(run, "-_") {
			dec, err = base64.RawURLEncoding.DecodeString(run[:len(run)/4*4])
		} else {
			dec, err = base64.RawStdEncoding.DecodeString(run[:len(run)/4*4])
		}
		if err != nil || !mostlyPrintable(dec) {
			continue
		}
		if sc.HoldsSecret(string(dec)) {
			return s, i, i
		}
	}
	return -1, 0, len(text)
}

func mostlyPrintable(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	n := 0
	for _, c := range b {
		if c >= 0x20 && c < 0x7f || c == '\n' || c == '\r' || c == '\t' {
			n++
		}
	}
	return n*10 >= len(b)*9
}
