#!/usr/bin/env python3
"""Writes the labelled corpus of fake secrets (positives.jsonl) and of
non-secrets (negatives.jsonl). Deterministic; rerun after editing. Every
secret here is random and fake."""
import json, random, string, base64, os

rnd = random.Random(20261127)
A = string.ascii_letters + string.digits
def r(n, alphabet=A): return ''.join(rnd.choice(alphabet) for _ in range(n))
HEX = '0123456789abcdef'
UP = string.ascii_uppercase + '234567'

def pem(kind):
    body = '\n'.join(r(64, A + '+/') for _ in range(4))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----"

secrets = [
    ("aws_access_key_id", lambda: "AKIA" + r(16, UP)),
    ("aws_secret", lambda: r(40, A + '/+')),  # used under a secret-looking key
    ("gcp_api_key", lambda: "AIza" + r(35, A + '_-')),
    ("github_pat", lambda: "ghp_" + r(36)),
    ("github_app", lambda: "ghs_" + r(36)),
    ("github_fine", lambda: "github_pat_" + r(22) + "_" + r(59)),
    ("gitlab", lambda: "glpat-" + r(20, A + '_-')),
    ("slack_bot", lambda: "xoxb-" + r(12, string.digits) + "-" + r(13, string.digits) + "-" + r(24)),
    ("stripe", lambda: "sk_live_" + r(24)),
    ("sendgrid", lambda: "SG." + r(22, A + '_-') + "." + r(43, A + '_-')),
    ("twilio", lambda: "SK" + r(32, HEX)),
    ("npm", lambda: "npm_" + r(36)),
    ("pypi", lambda: "pypi-AgEIcHlwaS5vcmc" + r(60, A + '_-')),
    ("dockerhub", lambda: "dckr_pat_" + r(27, A + '_-')),
    ("vault", lambda: "hvs." + r(24, A + '_-')),
    ("jwt", lambda: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ" + r(40, A + '_-') + "." + r(43, A + '_-')),
    ("openai", lambda: "sk-proj-" + r(48, A + '_-')),
    ("anthropic", lambda: "sk-ant-api03-" + r(93, A + '_-')),
    ("huggingface", lambda: "hf_" + r(34, string.ascii_letters)),
    ("digitalocean", lambda: "dop_v1_" + r(64, HEX)),
    ("shopify", lambda: "shpat_" + r(32, HEX)),
    ("databricks", lambda: "dapi" + r(32, HEX)),
    ("azure_key", lambda: r(86, A + '+/') + "=="),
    ("password", lambda: rnd.choice(["Tr0ub4dor&3", "hunter2hunter2", "S3cure!Pass#2024", "correct-horse-battery", "P@ssw0rd_" + r(6), r(16)])),
    ("slack_webhook", lambda: "T" + r(8, UP) + "/B" + r(8, UP) + "/" + r(24)),
    ("telegram", lambda: r(9, string.digits) + ":AA" + r(33, A + '_-')),
    ("linear", lambda: "lin_api_" + r(40)),
    ("grafana", lambda: "glsa_" + r(32) + "_" + r(8, HEX)),
    ("age", lambda: "AGE-SECRET-KEY-1" + r(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L")),
    ("newrelic", lambda: "NRAK-" + r(27, string.ascii_uppercase + string.digits)),
]

def contexts(kind, s):
    """Realistic places the secret shows up in; returns list of texts."""
    if kind == "aws_secret":
        return [f"export AWS_SECRET_ACCESS_KEY={s}", f'{{"aws_secret_access_key": "{s}", "region": "eu-west-1"}}',
                f"aws_secret_access_key = {s}\nregion = eu-west-1", f"ansible_env:\n  AWS_SECRET_ACCESS_KEY: {s}\n  HOME: /root"]
    if kind == "azure_key":
        return [f"DefaultEndpointsProtocol=https;AccountName=deploystore;AccountKey={s};EndpointSuffix=core.windows.net",
                f"AZURE_STORAGE_CONNECTION_STRING='DefaultEndpointsProtocol=https;AccountName=x;AccountKey={s}'",
                f"Endpoint=sb://bus.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={s}"]
    if kind == "password":
        return [f"DATABASE_URL=postgres://app:{s}@db.internal:5432/app ./manage.py migrate",
                f"mysql -u root -p{s} -h db.internal -e 'SHOW DATABASES'",
                f'{{"changed": true, "cmd": "psql", "invocation": {{"module_args": {{"login_password": "{s}"}}}}}}',
                f"db:\n  host: db.internal\n  password: {s}\n  port: 5432",
                f"docker run -e DB_PASSWORD={s} registry.example.com/app:1.4",
                f"mongodb+srv://deploy:{s}@cluster0.example.mongodb.net/app?retryWrites=true",
                f"redis://:{s}@cache.internal:6379/0",
                f"amqp://deploy:{s}@rabbit.internal:5672/vhost",
                f"jdbc:postgresql://db.internal:5432/app?user=app&password={s}",
                f"Server=db.internal;Database=app;User Id=app;Password={s};",
                f"fatal: could not run deploy.sh --db-password {s} (exit 2)",
                f"sshpass -p '{s}' ssh deploy@web-01 uptime",
                f"ansible_become_pass: {s}",
                f"msg: 'set_fact db_pass={s}'",
                f"curl -u deploy:{s} https://artifacts.internal/upload"]
    if kind == "slack_webhook":
        return [f"notify: https://hooks.slack.com/services/{s}", f'curl -X POST -d @msg.json https://hooks.slack.com/services/{s}']
    return [
        f"TASK [deploy : configure] changed: [web-01] => {{\"cmd\": \"deploytool --token {s} --env prod\", \"rc\": 0}}",
        f"+ export API_TOKEN={s}\n+ ./release.sh\nrelease 1.4.2 published",
        f'{{"ansible_facts": {{"ansible_env": {{"HOME": "/home/deploy", "SERVICE_CREDENTIAL": "{s}"}}}}}}',
        f"Using credentials {s} for upload to the registry",
        f"curl -fsS -H 'Authorization: Bearer {s}' https://api.internal/v1/deploy",
    ]

positives = []
for kind, gen in secrets:
    for text_fn in range(len(contexts(kind, "X"))):
        s = gen()
        positives.append({"kind": kind, "secret": s, "text": contexts(kind, s)[text_fn]})

for kind in ["RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY", "OPENSSH PRIVATE KEY", "PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "PGP PRIVATE KEY BLOCK"]:
    block = pem(kind)
    secret_line = block.split("\n")[2]
    positives.append({"kind": "pem", "secret": secret_line, "text": "writing key to /etc/ssl/private/app.key\n" + block + "\ndone"})
    positives.append({"kind": "pem_json", "secret": secret_line, "text": json.dumps({"type": "service_account", "private_key": block + "\n"})})
vault = "$ANSIBLE_VAULT;1.1;AES256\n" + "\n".join(r(80, HEX) for _ in range(3))
positives.append({"kind": "ansible_vault", "secret": vault.split("\n")[2], "text": "db_password: !vault |\n  " + vault.replace("\n", "\n  ")})
basic = base64.b64encode(b"deploy:" + r(12).encode()).decode()
positives.append({"kind": "basic", "secret": basic, "text": f"GET /artifacts HTTP/1.1\nAuthorization: Basic {basic}\nHost: x"})

negatives = []
def neg(t): negatives.append({"text": t})
for _ in range(15):
    neg(f"commit {r(40, HEX)} (HEAD -> main, origin/main)")
    u = '-'.join([r(8, HEX), r(4, HEX), '4' + r(3, HEX), rnd.choice('89ab') + r(3, HEX), r(12, HEX)])
    neg(f"deployment {u} started by alice")
    neg(f"traceparent: 00-{r(32, HEX)}-{r(16, HEX)}-01")
    neg(f"Pulling registry.example.com/checkout@sha256:{r(64, HEX)}")
    neg(f"ok: [web-0{rnd.randint(1, 9)}] => {{\"checksum\": \"{r(40, HEX)}\", \"md5sum\": \"{r(32, HEX)}\", \"dest\": \"/opt/app/release.tar.gz\"}}")
    neg(f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{r(43, A + '+/')} deploy@ci")
    neg(f"token_ttl: {rnd.choice([300, 900, 3600, 86400])}\nmax_tokens: {rnd.randint(100, 9000)}")
    neg(f"TASK [{rnd.choice(['Set database password', 'Rotate API token', 'Check password policy', 'Create secret for registry', 'Update credentials file'])}] ***")
    neg(f"-----BEGIN CERTIFICATE-----\n{r(64, A + '+/')}\n{r(64, A + '+/')}\n-----END CERTIFICATE-----")
    neg(f"{{\"password_required\": true, \"password_min_length\": {rnd.randint(8, 20)}, \"secret_name\": \"db-credentials\"}}")
    neg(f"Step 3/9 : RUN pip install -r requirements.txt --no-cache-dir\n ---> Running in {r(12, HEX)}")
    neg(f"PWD=/home/deploy/releases/{rnd.randint(1000, 9999)}\nOLDPWD=/home/deploy")
    neg(f"password: {rnd.choice(['must be at least 12 characters', 'is required for user deploy', 'was changed 3 days ago'])}")
    neg(f"DB_PASSWORD=${{DB_PASSWORD}} API_TOKEN={{{{ vault_api_token }}}} --password-file /run/secrets/db_{rnd.randint(1, 99)}")
    neg(f"image: ghcr.io/acme/app:v1.{rnd.randint(0, 40)}.{rnd.randint(0, 9)} digest={r(64, HEX)} build={rnd.randint(1000, 99999)}")

os.makedirs(os.path.dirname(__file__) or ".", exist_ok=True)
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "positives.jsonl"), "w") as f:
    for p in positives:
        f.write(json.dumps(p) + "\n")
with open(os.path.join(here, "negatives.jsonl"), "w") as f:
    for n in negatives:
        f.write(json.dumps(n) + "\n")
print(len(positives), "positives,", len(negatives), "negatives")
