package secrets

import (
	"encoding/base64"
	"strings"
)

// genericKeywords gate the key=value rules: a secret-looking word must occur.
var genericKeywords = []string{
	"pass", "pwd", "secret", "token", "auth", "credential", "creds", "cookie", "jwt", "key",
	"dockerconfigjson", "dockercfg", "connectionstring",
	"apikey", "api_key", "api-key", "accesskey", "access_key", "access-key",
	"privatekey", "private_key", "private-key", "accountkey", "signingkey", "signing_key",
	"encryptionkey", "encryption_key", "masterkey", "master_key",
}

// Catalogue returns the built-in rules, most specific first. Formats follow
// the published token layouts (and the gitleaks / trufflehog rule sets) of
// secrets that can appear in deployment output.
func Catalogue() []Rule {
	return []Rule{
		// Private keys and encrypted payloads.
		// -----BEGIN[A-Z0-9 ]*PRIVATE KEY( BLOCK)?----- to the matching END
		// line, or to the end of the text; found in code in one forward pass.
		{Name: "private_key", Keywords: []string{"private key"}, Find: findPrivateKey, Multiline: true},
		{Name: "private_key_base64", Keywords: []string{"ls0tls1crudjti"},
			Pattern: `\bLS0tLS1CRUdJTi[A-Za-z0-9+/]{20,}={0,2}`, Verify: base64PrivateKey},
		{Name: "putty_private_key", Keywords: []string{"private-lines:"},
			Pattern: `Private-Lines:\s*\d+(?:(?:\r?\n|\\n)[A-Za-z0-9+/=]+)+`, Multiline: true},
		{Name: "ansible_vault", Keywords: []string{"$ansible_vault;"},
			Pattern: `\$ANSIBLE_VAULT;[0-9.]+;[A-Z0-9]+(?:;[A-Za-z0-9_\-]+)?(?:(?:\r?\n|\\n)[ \t]*[0-9a-fA-F]+)+`, Multiline: true},
		{Name: "age_secret_key", Keywords: []string{"age-secret-key-1"},
			Pattern: `AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}`},
		{Name: "kubeconfig_client_key", Keywords: []string{"client-key-data"},
			Pattern: `client-key-data\\?["']?:\s*\\?["']?([A-Za-z0-9+/]{20,}={0,2})`},

		// Cloud providers.
		{Name: "aws_access_key_id", Keywords: []string{"akia", "asia", "abia", "acca", "a3t"},
			Pattern: `\b((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b`},
		{Name: "aws_secret_access_key", Keywords: []string{"secret_access_key", "secretaccesskey", "secret-access-key", "aws_secret", "aws-secret", "aws secret"},
			// Anchored at the key (which may carry a prefix: AWS_, --aws-):
			// unanchored, a case-folded pattern has no literal to skip to and
			// runs from every byte of the line.
			Pattern:         `(?i)[a-z0-9_.\-]*?secret[_\-. ]?(?:access[_\-. ]?)?key\\?["']?[ \t]*(?:[:=]|=>|[ \t])[ \t]*\\?["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|\z)`,
			AnchorAtKeyword: true},
		// The same key wrapped over two lines (a terminal or a YAML fold).
		{Name: "aws_secret_access_key_split", Keywords: []string{"secret_access_key", "secretaccesskey", "secret-access-key"}, Multiline: true,
			Pattern: `(?i)[a-z0-9_.\-]*?secret[_\-. ]?(?:access[_\-. ]?)?key\\?["']?[ \t]*(?:[:=]|=>|[ \t])[ \t]*\\?["']?([A-Za-z0-9/+]{8,39}(?:\r?\n|\\n)[ \t]*[A-Za-z0-9/+]{1,32})(?:[^A-Za-z0-9/+=]|\z)`,
			Verify:  splitAWSKey, AnchorAtKeyword: true},
		{Name: "gcp_api_key", Keywords: []string{"aiza"}, Pattern: `\b(AIza[0-9A-Za-z_\-]{35})`, Verify: notPublishable},
		{Name: "gcp_oauth_token", Keywords: []string{"ya29."}, Pattern: `\b(ya29\.[0-9A-Za-z_\-]{20,})`},
		{Name: "gcp_oauth_client_secret", Keywords: []string{"gocspx-"}, Pattern: `\b(GOCSPX-[0-9A-Za-z_\-]{28})`},
		{Name: "azure_storage_key", Keywords: []string{"accountkey="},
			Pattern: `(?i)AccountKey=([A-Za-z0-9+/]{20,}={0,2})`},
		{Name: "azure_shared_access_key", Keywords: []string{"sharedaccesskey="},
			Pattern: `(?i)SharedAccessKey=([A-Za-z0-9+/]{20,}={0,2})`},
		{Name: "azure_sas_signature", Keywords: []string{"sig="},
			Pattern: `[?&;]sig=([A-Za-z0-9%+/=]{20,})`},
		{Name: "azure_ad_client_secret", Keywords: []string{"q~"},
			Pattern: `(?:^|[^A-Za-z0-9_~.\-])([A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34})(?:[^A-Za-z0-9_~.\-]|\z)`},
		{Name: "digitalocean_token", Keywords: []string{"dop_v1_", "doo_v1_", "dor_v1_"}, Pattern: `\b(do[opr]_v1_[a-f0-9]{64})\b`},
		{Name: "heroku_api_key", Keywords: []string{"heroku", "hrku-"},
			Pattern: `(?i)(?:heroku[a-z0-9_ .\-]{0,25}(?:=|:|=>|\s)\s*\\?["']?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|\b(HRKU-[A-Za-z0-9_\-]{60}))`},
		{Name: "fly_token", Keywords: []string{"fm1_", "fm2_", "fm1a_", "fm1r_"}, Pattern: `\b(fm[12][ar]?_[A-Za-z0-9+/=_\-]{50,})`},
		{Name: "databricks_token", Keywords: []string{"dapi"}, Pattern: `\b(dapi[a-f0-9]{32}(?:-\d)?)\b`},

		// Source control and CI.
		{Name: "github_token", Keywords: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}, Pattern: `\b(gh[pousr]_[A-Za-z0-9]{36,255})\b`},
		{Name: "github_fine_grained_pat", Keywords: []string{"github_pat_"}, Pattern: `\b(github_pat_[A-Za-z0-9_]{50,255})\b`},
		{Name: "gitlab_token", Keywords: []string{"glpat-", "gldt-", "glptt-", "glrt-", "glrtr-", "gloas-", "glcbt-", "glimt-", "glagent-", "glft-", "glffct-", "glsoat-", "glwt-"},
			Pattern: `\b((?:glpat|gldt|glptt|glrtr?|gloas|glcbt|glimt|glagent|glft|glffct|glsoat|glwt)-[0-9A-Za-z_\-]{20,})`},
		{Name: "gitlab_runner_registration_token", Keywords: []string{"gr1348941"}, Pattern: `\b(GR1348941[0-9A-Za-z_\-]{20,})`},
		{Name: "circleci_token", Keywords: []string{"ccipat_"}, Pattern: `\b(CCIPAT_[A-Za-z0-9]{20,}_[a-f0-9]{40})\b`},
		{Name: "buildkite_token", Keywords: []string{"bkua_"}, Pattern: `\b(bkua_[a-f0-9]{40})\b`},
		{Name: "sonarqube_token", Keywords: []string{"squ_", "sqp_", "sqa_"}, Pattern: `\b(sq[upa]_[a-f0-9]{40})\b`},
		{Name: "terraform_cloud_token", Keywords: []string{".atlasv1."}, Pattern: `\b([A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-=]{60,})`},
		{Name: "pulumi_token", Keywords: []string{"pul-"}, Pattern: `\b(pul-[a-f0-9]{40})\b`},

		// Package registries and artifact stores.
		{Name: "npm_token", Keywords: []string{"npm_"}, Pattern: `\b(npm_[A-Za-z0-9]{36})\b`},
		{Name: "npmrc_auth_token", Keywords: []string{"_authtoken", "_auth="},
			Pattern: `(?i)_auth(?:Token)?\s*=\s*["']?([^\s"'$][^\s"']*)`},
		{Name: "pypi_token", Keywords: []string{"pypi-ag"}, Pattern: `\b(pypi-AgE[A-Za-z0-9_\-]{50,})`},
		{Name: "rubygems_api_key", Keywords: []string{"rubygems_"}, Pattern: `\b(rubygems_[0-9a-f]{48})\b`},
		{Name: "nuget_api_key", Keywords: []string{"oy2"}, Pattern: `\b(oy2[a-z0-9]{43})\b`},
		{Name: "dockerhub_token", Keywords: []string{"dckr_pat_", "dckr_oat_"}, Pattern: `\b(dckr_(?:pat|oat)_[A-Za-z0-9_\-]{20,})`},
		{Name: "artifactory_token", Keywords: []string{"akcp", "cmvmdgtuojax"}, Pattern: `\b(AKCp[A-Za-z0-9]{60,}|cmVmdGtuOjAxOj[A-Za-z0-9]{40,})\b`},

		// Secret stores.
		{Name: "vault_token", Keywords: []string{"hvs.", "hvb.", "hvr."}, Pattern: `\b(hv[sbr]\.[A-Za-z0-9_\-]{24,})`},
		{Name: "doppler_token", Keywords: []string{"dp.pt.", "dp.st.", "dp.sa.", "dp.ct.", "dp.scim.", "dp.audit."},
			Pattern: `\b(dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44})`},
		{Name: "onepassword_service_token", Keywords: []string{"ops_eyj"}, Pattern: `\b(ops_eyJ[A-Za-z0-9+/=_\-]{100,})`},

		// Chat, SaaS and AI.
		{Name: "slack_token", Keywords: []string{"xoxb-", "xoxp-", "xoxa-", "xoxo-", "xoxr-", "xoxs-", "xoxe-", "xoxe."},
			Pattern: `\b(xox[abposre](?:\.xox[a-z])?-[0-9A-Za-z\-]{10,})`},
		{Name: "slack_app_token", Keywords: []string{"xapp-"}, Pattern: `\b(xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+)`},
		{Name: "slack_webhook", Keywords: []string{"hooks.slack.com"},
			Pattern: `hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9+/_\-]{20,})`},
		{Name: "discord_webhook", Keywords: []string{"/api/webhooks/"},
			Pattern: `discord(?:app)?\.com/api/webhooks/\d+/([A-Za-z0-9_\-]{30,})`},
		{Name: "teams_webhook", Keywords: []string{"webhook.office.com"},
			Pattern: `webhook\.office\.com/webhookb2/([A-Za-z0-9@\-]+/IncomingWebhook/[A-Za-z0-9]+/[A-Za-z0-9\-]+)`},
		// Also in bot API paths: /bot<id>:<token>/sendMessage.
		{Name: "telegram_bot_token", Keywords: []string{":aa"}, Pattern: `(?:^|[^0-9A-Za-z]|bot)(\d{8,10}:AA[0-9A-Za-z_\-]{33})(?:[^0-9A-Za-z_\-]|\z)`},
		{Name: "stripe_key", Keywords: []string{"sk_live_", "rk_live_", "sk_test_", "rk_test_"}, Pattern: `\b((?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,99})\b`},
		{Name: "stripe_webhook_secret", Keywords: []string{"whsec_"}, Pattern: `\b(whsec_[0-9A-Za-z+/=]{24,})`},
		{Name: "sendgrid_api_key", Keywords: []string{"sg."}, Literal: "SG.", Pattern: `\b(SG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64})`},
		{Name: "twilio_api_key", Keywords: []string{"sk"}, Literal: "SK", Pattern: `\b(SK[0-9a-fA-F]{32})\b`},
		{Name: "mailgun_api_key", Keywords: []string{"key-"}, Pattern: `\b(key-[0-9a-f]{32})\b`},
		{Name: "mailchimp_api_key", Keywords: []string{"-us"}, Pattern: `\b([0-9a-f]{32}-us\d{1,2})\b`},
		{Name: "square_token", Keywords: []string{"sq0atp-", "sq0csp-", "eaaa"}, Pattern: `\b(sq0(?:atp|csp)-[0-9A-Za-z_\-]{22,43}|EAAA[A-Za-z0-9_\-]{60})`},
		{Name: "shopify_token", Keywords: []string{"shpat_", "shpca_", "shppa_", "shpss_"}, Pattern: `\b(shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})\b`},
		{Name: "linear_api_key", Keywords: []string{"lin_api_"}, Pattern: `\b(lin_api_[A-Za-z0-9]{40})\b`},
		{Name: "newrelic_key", Keywords: []string{"nrak-", "nrjs-", "nrii-"}, Pattern: `\b(NR(?:AK|JS|II)-[A-Za-z0-9]{20,40})\b`},
		{Name: "sentry_token", Keywords: []string{"sntrys_", "sntryu_"}, Pattern: `\b(sntry[su]_[A-Za-z0-9+/=_]{40,})`},
		{Name: "grafana_token", Keywords: []string{"glc_", "glsa_"}, Pattern: `\b(glc_[A-Za-z0-9+/]{32,}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})`},
		{Name: "atlassian_api_token", Keywords: []string{"atatt3"}, Pattern: `\b(ATATT3[A-Za-z0-9_\-=]{50,})`},
		{Name: "postman_api_key", Keywords: []string{"pmak-"}, Pattern: `\b(PMAK-[a-f0-9]{24}-[a-f0-9]{34})\b`},
		{Name: "tailscale_key", Keywords: []string{"tskey-"}, Pattern: `\b(tskey-[a-z]+-[A-Za-z0-9]+-[A-Za-z0-9]+)`},
		{Name: "openai_api_key", Keywords: []string{"sk-proj-", "sk-svcacct-", "sk-admin-", "t3blbkfj"},
			Pattern: `\b(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})`},
		{Name: "anthropic_api_key", Keywords: []string{"sk-ant-"}, Pattern: `\b(sk-ant-[a-z]+\d{2}-[A-Za-z0-9_\-]{32,})`},
		{Name: "huggingface_token", Keywords: []string{"hf_"}, Pattern: `\b(hf_[A-Za-z]{34})\b`},
		{Name: "facebook_access_token", Keywords: []string{"eaacedeose0cba"}, Pattern: `\b(EAACEdEose0cBA[0-9A-Za-z]+)`},

		// Tokens in general shapes.
		{Name: "jwt", Keywords: []string{"eyj"}, Pattern: `\b(eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*)`},
		{Name: "basic_auth", Keywords: []string{"basic"}, Pattern: `\b(?i)basic\s+([A-Za-z0-9+/]{6,}={0,2})`, Verify: basicAuth,
			AnchorAtKeywordStart: true},
		{Name: "bearer_token", Keywords: []string{"bearer"}, Pattern: `\b(?i)bearer\s+([A-Za-z0-9\-._~+/]{8,}=*)`, Verify: tokenLike,
			AnchorAtKeywordStart: true},
		{Name: "authorization_header", Keywords: []string{"authorization"},
			// Any scheme (Splunk, SSWS, GenieKey, Token, ...) before the credentials.
			Pattern: `(?i)authorization\\?["']?\s*[:=]\s*\\?["']?(?:[A-Za-z][A-Za-z0-9_.\-]{1,30}\s+)?([^\s"'\\,;]{8,})`,
			Verify:  notPlaceholder, AnchorAtKeywordStart: true},
		// scheme://user:password@host; the pattern starts at "://" and the
		// scheme ([A-Za-z][A-Za-z0-9+.-]{1,30}) is checked backwards in code,
		// so clean text costs no regex work at all.
		{Name: "url_credentials", Keywords: []string{"://"},
			Pattern: `://[^\s:/?#@"'<>\[\]]*:([^\s/"'<>]+)@[A-Za-z0-9\[_]`, Verify: urlCredentials,
			AnchorAtKeywordStart: true},
		// A password holding an unencoded "/" (scanned in code, bounded).
		{Name: "url_credentials_slash", Keywords: []string{"://"}, Find: findURLSlashPassword},
		{Name: "cli_user_password", Keywords: []string{"-u ", "--user", "-u="},
			Pattern: `(?:\s-u|--user)[ \t=]+["']?[^\s:"']+:([^\s"']+)`, Verify: notPlaceholder},
		{Name: "mysql_cli_password", Keywords: []string{"mysql", "mariadb"},
			Pattern: `\b(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump)\b[^\n|;&]*?\s-p("[^"]*"|'[^']*'|[^\s'"]+)`, Verify: notPlaceholder},
		{Name: "sshpass_password", Keywords: []string{"sshpass"},
			Pattern: `\bsshpass\s+-p\s*("[^"]*"|'[^']*'|[^\s'"]+)`, Verify: notPlaceholder},
		{Name: "tool_password", Keywords: toolKeywords, Find: findToolPassword},
		{Name: "oracle_connect_password", Keywords: oracleKeywords, Find: findOracleConnect},
		// openssl -passin/-passout/-pass pass:SECRET (env:, file:, fd: name sources).
		{Name: "openssl_pass_argument", Keywords: []string{"pass:"}, Literal: "pass:",
			Pattern: `(?:^|[\s"'=])pass:("[^"]*"|'[^']*'|[^\s'"]+)`, Verify: notPlaceholder},
		// A literal piped into base64 (either way) is a credential being encoded.
		{Name: "base64_piped_literal", Keywords: []string{"base64"},
			Pattern: `\b(?:echo|printf)\s+(?:-[neE]+\s+)?(?:'%s'\s+|"%s"\s+)?("[^"\n]+"|'[^'\n]+'|[^\s|'"]+)\s*\|\s*base64\b`, Verify: pipedLiteral},
		{Name: "base64_here_string", Keywords: []string{"base64"},
			Pattern: `\bbase64\s+(?:-d|--decode|-D)\s*<<<\s*("[^"\n]+"|'[^'\n]+'|\S+)`, Verify: notPlaceholder},
		{Name: "private_key_der_base64", Keywords: privateKeyDERMarkers, Find: findBase64PrivateKey, Multiline: true},
		{Name: "encoded_secret", Keywords: base64SecretKeywords, Find: findEncodedSecret},
		{Name: "url_path_token", Keywords: []string{"/token/", "/tokens/", "/secret/", "/key/", "/apikey/", "/api_key/", "/api-key/", "/access_token/", "/auth/"},
			Pattern: `(?i)/(?:tokens?|secret|key|apikey|api_key|api-key|access_token|auth)/([A-Za-z0-9_\-]{20,})(?:[/?#"'\s]|\z)`, Verify: highEntropy},
		{Name: "xml_secret_element", Keywords: genericKeywords, AnchorAtKeyword: true, Plausible: xmlElementStart,
			Pattern: `([A-Za-z_][A-Za-z0-9_.:\-]*)>[ \t]*([^<\s][^<\n]*?)[ \t]*</([A-Za-z_][A-Za-z0-9_.:\-]*)>`, Verify: xmlElement},
		{Name: "named_value", Keywords: []string{"value"}, Find: findNamedValue, Multiline: true},
		{Name: "cli_secret_flag", Keywords: genericKeywords,
			// Also across the elements of an argv printed as JSON: "--password", "x".
			Pattern: `(--?[A-Za-z][A-Za-z0-9_.\-]*)(?:[ \t]+|=|\\?"[ \t]*,[ \t]*\\?")("[^"\n]*"|'[^'\n]*'|[^\s"'\-\\][^\s"'\\]*)`,
			Verify:  cliFlag, AnchorAtKeyword: true, Plausible: flagThenValue},
		{Name: "generic_secret", Keywords: genericKeywords,
			Pattern: `(?i)([a-z0-9_.\-]+)(?:\\*["'])?[ \t]*(=>|:=|=|:)[ \t]*(?:"((?:[^"\\\n]|\\[^"])*)"|'([^'\n]*)'|\\+"([^"\n]*?)\\+"|([^\s"'\\,;&}\]]+))`,
			Verify:  genericAssignment, AnchorAtKeyword: true, Plausible: keyThenSeparator, Overflow: longQuotedValue},
	}
}

// stopWords are values that state something about a secret, not the secret.
var stopWords = map[string]struct{}{}

func init() {
	for _, w := range strings.Fields(`true false null nil none yes no on off required optional changed updated
		set unset done ok reset expired invalid incorrect hidden masked empty n/a na string omit undefined present
		absent generated rotated bearer basic token digest secret password enabled disabled default prompt
		missing provided supplied accepted rejected failed success redacted str int bool object ~ inherit read write
		verified sent`) {
		stopWords[w] = struct{}{}
	}
}

// isStructuralPlaceholder: nothing to hide (empty, a template or variable
// reference, a mask, Ansible's no_log marker).
func isStructuralPlaceholder(v string) bool {
	if v == "" {
		return true
	}
	for _, p := range []string{"${", "{{", "$(", "%(", "<", "#{", "%{", "[REDACTED", "(sensitive"} {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	if len(v) > 2 && v[0] == '%' && v[len(v)-1] == '%' { // %NUGET_PASSWORD%
		return true
	}
	if v == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" {
		return true
	}
	if v[0] == '$' && len(v) > 1 {
		envRef := true
		for i := 1; i < len(v); i++ {
			c := v[i]
			if !(isUpper(c) || isDigit(c) || c == '_') {
				envRef = false
				break
			}
		}
		if envRef {
			return true
		}
	}
	same := true
	for i := 1; i < len(v); i++ {
		if v[i] != v[0] {
			same = false
			break
		}
	}
	return same && len(v) > 2
}

// isPlaceholder adds, for secrets found in free text, words that describe a
// secret and paths to files holding one.
func isPlaceholder(v string) bool {
	if isStructuralPlaceholder(v) {
		return true
	}
	var buf [32]byte
	if len(v) <= len(buf) {
		if _, ok := stopWords[string(lowerInto(buf[:0], v))]; ok {
			return true
		}
	}
	if strings.HasPrefix(v, "/") || strings.HasPrefix(v, "~/") || strings.HasPrefix(v, "./") {
		return true
	}
	// Documentation placeholders: sk_live_..., <your-token-here>, xxxx.
	if strings.Contains(v, "...") || strings.Contains(v, "…") || strings.Contains(v, "xxxx") || strings.Contains(v, "XXXX") ||
		strings.Contains(strings.ToLower(v), "your-") || strings.Contains(strings.ToLower(v), "your_") || strings.Contains(v, "<") ||
		strings.Contains(strings.ToLower(v), "replace_me") || strings.Contains(strings.ToLower(v), "change_me") {
		return true
	}
	// What a tool printed in place of the secret (kubectl: DATA+OMITTED).
	return strings.Contains(v, "REDACTED") || strings.Contains(v, "OMITTED")
}

func notPlaceholder(text string, m []int, _ *keyClassifier) (int, int, bool) {
	start, end, _ := lastGroup(m)
	start, end = unquote(text, start, end)
	return start, end, !isPlaceholder(text[start:end])
}

// urlCredentials wants a URL scheme before "://": a letter and 1 to 30
// more scheme bytes.
func urlCredentials(text string, m []int, kc *keyClassifier) (int, int, bool) {
	i := m[0]
	hasScheme := false
	for j := i - 1; j >= 0 && j >= i-31; j-- {
		c := text[j]
		if !(isAlnum(c) || c == '+' || c == '.' || c == '-') {
			break
		}
		if j <= i-2 && (isLower(c) || isUpper(c)) {
			hasScheme = true
			break
		}
	}
	if !hasScheme {
		return 0, 0, false
	}
	start, end, ok := notPlaceholder(text, m, kc)
	if !ok {
		return 0, 0, false
	}
	// host:port/path@x is no password: what comes before a "/" must not be
	// a port, and the user part must be there or the password long enough.
	if slash := strings.IndexByte(text[start:end], '/'); slash >= 0 {
		if slash == 0 || isAllDigits(text[start:start+slash]) || strings.Contains(text[start:end], "/@") {
			return 0, 0, false
		}
	}
	return start, end, true
}

// findPrivateKey finds a PEM private-key block from its BEGIN line to its
// END line (or the end of the text when cut), moving only forward.
func findPrivateKey(text string, from int, _ Scanner) (start, end, next int) {
	const begin, finish = "-----BEGIN", "-----END"
	for {
		i := strings.Index(text[from:], begin)
		if i < 0 {
			return -1, 0, len(text)
		}
		start = from + i
		bodyStart, ok := privateKeyLabel(text, start+len(begin))
		if !ok {
			from = start + len(begin)
			continue
		}
		for at := bodyStart; ; {
			j := strings.Index(text[at:], finish)
			if j < 0 {
				return start, len(text), len(text)
			}
			if after, ok := privateKeyLabel(text, at+j+len(finish)); ok {
				return start, after, after
			}
			at += j + len(finish)
		}
	}
}

// privateKeyLabel checks that text[i:] is "[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----"
// and returns the offset past it.
func privateKeyLabel(text string, i int) (int, bool) {
	j := i
	for j < len(text) && (isUpper(text[j]) || isDigit(text[j]) || text[j] == ' ') {
		j++
	}
	label := text[i:j]
	if !strings.HasSuffix(label, "PRIVATE KEY") && !strings.HasSuffix(label, "PRIVATE KEY BLOCK") {
		return 0, false
	}
	if !strings.HasPrefix(text[j:], "-----") {
		return 0, false
	}
	return j + 5, true
}

func unquote(text string, start, end int) (int, int) {
	if end-start >= 2 && (text[start] == '"' || text[start] == '\'') && text[end-1] == text[start] {
		return start + 1, end - 1
	}
	return start, end
}

// tokenLike wants a digit or symbol so that prose ("bearer authentication")
// is not taken for a token.
func tokenLike(text string, m []int, kc *keyClassifier) (int, int, bool) {
	start, end, ok := notPlaceholder(text, m, kc)
	if !ok {
		return 0, 0, false
	}
	for i := start; i < end; i++ {
		if !isLower(text[i]) && !isUpper(text[i]) {
			return start, end, true
		}
	}
	return 0, 0, false
}

// basicAuth accepts only base64 of "user:password".
func basicAuth(text string, m []int, _ *keyClassifier) (int, int, bool) {
	start, end, _ := lastGroup(m)
	dec, err := base64.StdEncoding.DecodeString(text[start:end])
	if err != nil {
		dec, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(text[start:end], "="))
	}
	if err != nil || !strings.Contains(string(dec), ":") {
		return 0, 0, false
	}
	return start, end, true
}

// base64PrivateKey accepts base64 PEM blocks that hold a private key, not
// certificates or public keys.
func base64PrivateKey(text string, m []int, _ *keyClassifier) (int, int, bool) {
	start, end := m[0], m[1]
	head := text[start:min(end, start+64)]
	head = head[:len(head)/4*4]
	dec, _ := base64.StdEncoding.DecodeString(head)
	if !strings.Contains(string(dec), "PRIVATE") {
		return 0, 0, false
	}
	return start, end, true
}

// cliFlag: --password x, --api-key=x, where the flag names a secret.
func cliFlag(text string, m []int, kc *keyClassifier) (int, int, bool) {
	if m[0] > 0 && !strings.ContainsRune(" \t'\"=", rune(text[m[0]-1])) {
		return 0, 0, false
	}
	flag := strings.TrimLeft(text[m[2]:m[3]], "-")
	if !kc.IsSecret(flag) {
		return 0, 0, false
	}
	start, end := unquote(text, m[4], m[5])
	// A reference names where the secret is (-pass env:VAR, -passin file:PATH).
	if isPlaceholder(text[start:end]) || isProse(text[start:end]) || isReference(text[start:end]) || namesSecretObject(flag, text[start:end]) {
		return 0, 0, false
	}
	return start, end, true
}

// genericAssignment: key=value, key: value, "key": "value" where the key
// names a secret. Groups: 1 key, 2 separator, 3-6 value forms (6 bare).
func genericAssignment(text string, m []int, kc *keyClassifier) (int, int, bool) {
	key := strings.TrimLeft(text[m[2]:m[3]], "-._")
	if !kc.IsSecret(key) && !strings.EqualFold(key, "pwd") {
		return 0, 0, false
	}
	// Part of an identifier (arn:aws:secretsmanager:...:secret:name), not
	// an assignment.
	if m[2] > 0 && text[m[2]-1] == ':' {
		return 0, 0, false
	}
	if strings.EqualFold(key, "apiKey") && isPublishableConfig(around(text, m[2])) {
		return 0, 0, false
	}
	start, end, _ := lastGroup(m)
	if m[12] >= 0 { // bare value
		var ok bool
		if end, ok = bareValueEnd(text, m, start, end); !ok {
			return 0, 0, false
		}
		// Short numbers are counts and lifetimes, not secrets, unless the key
		// is a password.
		if v := text[start:end]; len(v) <= 5 && isAllDigits(v) && !strings.Contains(strings.ToLower(key), "pass") && !strings.Contains(strings.ToLower(key), "pwd") {
			return 0, 0, false
		}
	}
	value := text[start:end]
	if isPlaceholder(value) || isReference(value) || namesSecretObject(key, value) {
		return 0, 0, false
	}
	return start, end, true
}

// bareValueEnd decides where an unquoted value ends: in a URL query at
// "&"; in an assignment at a blank (punctuation belongs to the value:
// framework secret keys are full of it); a YAML value or an environment
// line (KEY=... at the start of a line) runs to the end of the line; after
// a colon mid-line, a value with a blank is prose.
func bareValueEnd(text string, m []int, start, end int) (int, bool) {
	keyStart := m[2]
	sep := text[m[4]:m[5]]
	lineStart := atLineStart(text, keyStart)
	if keyStart > 0 && (text[keyStart-1] == '?' || text[keyStart-1] == '&') {
		return trimCloser(text, start, end), true
	}
	if sep == ":" && !lineStart {
		e, prose := lineValueEnd(text, start)
		return trimCloser(text, start, e), !prose
	}
	if lineStart && sep == ":" {
		e := start
		for e < len(text) && text[e] != '\n' && text[e] != '\r' {
			if text[e] == '#' && e > start && (text[e-1] == ' ' || text[e-1] == '\t') {
				break
			}
			e++
		}
		for e > start && (text[e-1] == ' ' || text[e-1] == '\t') {
			e--
		}
		if v := text[start:e]; strings.ContainsAny(v, " \t") {
			if sep == ":" && isProse(v) {
				return 0, false
			}
		}
		return trimCloser(text, start, e), true
	}
	e := end
	for e < len(text) {
		c := text[e]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'' || c == '\\' || c == ';' {
			break
		}
		if c == ',' && (e+1 == len(text) || text[e+1] == ' ') {
			break
		}
		e++
	}
	return trimCloser(text, start, e), true
}

// trimCloser drops closing brackets the value did not open ("(using
// password: YES)", "{password=x}").
func trimCloser(text string, start, end int) int {
	for end > start {
		c := text[end-1]
		var open byte
		switch c {
		case ')':
			open = '('
		case '}':
			open = '{'
		case ']':
			open = '['
		default:
			return end
		}
		if strings.IndexByte(text[start:end-1], open) >= 0 {
			return end
		}
		end--
	}
	return end
}

// atLineStart: only blanks, a list dash or "export " before i on its line.
func atLineStart(text string, i int) bool {
	j := i
	for j > 0 && (text[j-1] == ' ' || text[j-1] == '\t' || text[j-1] == '-') {
		j--
	}
	if j >= 7 && text[j-7:j] == "export " {
		j -= 7
		for j > 0 && (text[j-1] == ' ' || text[j-1] == '\t') {
			j--
		}
	}
	return j == 0 || text[j-1] == '\n' || text[j-1] == '\r'
}

func isEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(isUpper(c) || isDigit(c) || c == '_') {
			return false
		}
	}
	return true
}

// proseWords in a value with blanks make it a sentence about a password,
// not a passphrase.
var proseWords = map[string]struct{}{}

func init() {
	for _, w := range strings.Fields(`a an the is are was were be been being must should will would can could
		not no of to for at in on with from by your my our their this that these those it its please enter
		required least characters chars long minimum maximum contain contains set using use used has have
		had does do did when if or than then too very only new old changed change expired invalid wrong
		incorrect match matches mismatch missing empty stored saved see via updated successfully success failed
		verified flag`) {
		proseWords[w] = struct{}{}
	}
}

func isProse(v string) bool {
	if strings.Contains(v, ", ") || strings.Contains(v, " (") {
		return true
	}
	for _, w := range strings.Fields(v) {
		var buf [32]byte
		if len(w) <= len(buf) {
			if _, ok := proseWords[string(lowerInto(buf[:0], strings.Trim(w, ".,;:!?()")))]; ok {
				return true
			}
		}
	}
	return false
}

// isReference: the value names where a secret is, not the secret: a
// Terraform expression, a secret manager reference or ARN, a YAML tag.
func isReference(v string) bool {
	for _, p := range []string{"var.", "local.", "data.", "module.", "each.", "self.", "op://", "arn:aws", "arn:", "vault:",
		"ref+", "secretsmanager:", "sm://", "gcp:", "awssm:", "azkv:", "!", "env:", "file:", "fd:", "secret://", "secrets."} {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	if strings.HasPrefix(v, "projects/") && strings.Contains(v, "/secrets/") {
		return true
	}
	// The value read from a file: vault write k=@/path, http k=@./file.
	if strings.HasPrefix(v, "@/") || strings.HasPrefix(v, "@./") || strings.HasPrefix(v, "@~/") {
		return true
	}
	// Another secret's name: PASSWORD_ENV_VAR=DB_PASSWORD.
	return isEnvName(v) && strings.Contains(v, "_") && defaultKeys.IsSecret(v)
}

// namesSecretObject: under a bare "secret" key, a Kubernetes object name
// (secret="api-tls", secret: db-credentials) names a Secret, it is not one.
func namesSecretObject(key, value string) bool {
	if !strings.EqualFold(key, "secret") && !strings.EqualFold(key, "secretName") && !strings.EqualFold(key, "secret_name") {
		return false
	}
	if len(value) > 63 || !strings.ContainsAny(value, "-.") {
		return false
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		if !(isLower(c) || isDigit(c) || c == '-' || c == '.') {
			return false
		}
	}
	return isLower(value[0])
}

// flagThenValue: a word that starts with "-" and is followed by a blank or
// "=", which cli_secret_flag's pattern needs.
func flagThenValue(text string, keyStart, runEnd int) bool {
	return text[keyStart] == '-' && runEnd < len(text) && (text[runEnd] == ' ' || text[runEnd] == '\t' || text[runEnd] == '=' ||
		text[runEnd] == '"' || text[runEnd] == '\\')
}

// keyThenSeparator: a key followed by an optional (escaped) quote, blanks
// and "=" or ":", which generic_secret's pattern needs.
func keyThenSeparator(text string, _, runEnd int) bool {
	i := runEnd
	if i < len(text) && text[i] == '\\' {
		i++
	}
	if i < len(text) && (text[i] == '"' || text[i] == '\'') {
		i++
	}
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	return i < len(text) && (text[i] == '=' || text[i] == ':')
}

// lineValueEnd finds where an unquoted YAML-like value that starts at i
// ends, or reports prose (a space inside the value) as soon as it sees it,
// so that it reads no further than the value's first word and the blanks
// after it.
func lineValueEnd(text string, i int) (end int, prose bool) {
	end = i
	blank := false
	for ; i < len(text); i++ {
		switch c := text[i]; c {
		case '\n', '\r', '"', '\'', '}', ']', ',':
			return end, false
		case '\\':
			if i+1 < len(text) && (text[i+1] == 'n' || text[i+1] == 'r' || text[i+1] == '"') {
				return end, false
			}
		case '#':
			if blank {
				return end, false
			}
		case ' ', '\t':
			blank = true
			continue
		}
		if blank {
			return end, true
		}
		end = i + 1
	}
	return end, false
}

func isAllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}
