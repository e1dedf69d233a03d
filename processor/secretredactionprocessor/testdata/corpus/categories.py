#!/usr/bin/env python3
"""Writes categories.jsonl: positives and near-miss negatives for each
category of leak in deployment telemetry (command lines and argv arrays,
connect strings, auth schemes, URL paths, printed config files, name/value
pairs, encodings, PEM lines, ...). Every value is random and fake; the
texts are our own. Deterministic: rerun after editing.

A line is {"category", "polarity": "positive"|"negative", "secrets": [...],
and "text" (a string, sent as a log body and an attribute) or "body" (a
JSON value, sent as a structured log body)}."""
import base64, json, os, random, string

rnd = random.Random(20261202)
A = string.ascii_letters + string.digits
PUNCT = "#^&)@!%*(-_+=~"
def r(n, alphabet=A): return ''.join(rnd.choice(alphabet) for _ in range(n))
def pw():
    k = rnd.randrange(6)
    if k == 0: return r(4) + rnd.choice("!#%*") + r(8)
    if k == 1: return "Fk" + r(3) + rnd.choice(PUNCT) + r(5) + rnd.choice(PUNCT) + r(3)
    if k == 2: return r(12, string.ascii_lowercase + string.digits) + "Q9"
    if k == 3: return "Zq" + r(18)
    if k == 4: return r(5) + "-" + r(5) + "-" + r(4)
    return "Gen" + r(10) + "x7"
def punct_secret(): return r(6) + "#" + r(3) + "^" + r(4) + "&" + r(3) + ")" + r(2) + "@" + r(5)
def host(): return rnd.choice(["db-01.internal", "10.0.3.17", "pg.prod.example.net", "mysql-primary", "redis.cache.local"])
def user(): return rnd.choice(["app", "deploy", "ci", "svc_backup", "admin", "scott", "jenkins"])
def words(n): return ' '.join(rnd.choice(["correct", "horse", "battery", "staple", "purple", "lantern", "orbit", "velvet", "copper", "maple", "quartz", "thunder"]) for _ in range(n))
def aws_secret(): return r(40, A + "/+")
def ghp(): return "ghp_" + r(36)
def b64(s): return base64.b64encode(s.encode()).decode()

out = []
def pos(cat, secrets, text=None, body=None):
    e = {"category": cat, "polarity": "positive", "secrets": secrets}
    if body is not None: e["body"] = body
    else: e["text"] = text
    out.append(e)
def neg(cat, text=None, body=None):
    e = {"category": cat, "polarity": "negative"}
    if body is not None: e["body"] = body
    else: e["text"] = text
    out.append(e)

def wrap(cmd):
    """Places a command shows up in: a shell trace, an Ansible result, a log line."""
    k = rnd.randrange(5)
    if k == 0: return "+ " + cmd
    if k == 1: return json.dumps({"cmd": cmd, "rc": 0, "changed": True})
    if k == 2: return f"TASK [deploy : run] changed: [web-0{rnd.randrange(1,9)}] => (item={cmd})"
    if k == 3: return f"$ {cmd}\nok"
    return f"step 'login' command_line={cmd!r} exit=0"

# --- CLI flags of common tools --------------------------------------------
cli_pos = [
    lambda s: f"redis-cli -h {host()} -a {s} ping",
    lambda s: f"redis-cli -a '{s}' --no-auth-warning INFO",
    lambda s: f"docker login -u {user()} -p {s} registry.example.com",
    lambda s: f"podman login registry.example.com -u {user()} -p {s}",
    lambda s: f"helm registry login oci.example.com --username {user()} -p {s}",
    lambda s: f"htpasswd -b /etc/nginx/.htpasswd {user()} {s}",
    lambda s: f"htpasswd -cb /etc/apache2/.htpasswd {user()} {s}",
    lambda s: f"htpasswd -nbB {user()} {s}",
    lambda s: f"keytool -importkeystore -srckeystore a.p12 -srcstorepass {s} -destkeystore b.jks",
    lambda s: f"keytool -genkeypair -alias app -keystore app.jks -storepass {s} -dname CN=app",
    lambda s: f"keytool -list -keystore app.jks -keypass {s}",
    lambda s: f"openssl pkcs12 -export -in c.pem -inkey k.pem -out c.p12 -passout pass:{s}",
    lambda s: f"openssl rsa -in enc.key -out dec.key -passin pass:{s}",
    lambda s: f"openssl enc -aes-256-cbc -in f -out f.enc -pass pass:{s}",
    lambda s: f"vault write auth/approle/login role_id=3f1a secret_id={s}",
    lambda s: f"az storage blob upload --account-name deploystore --account-key {s} -f a.tgz",
    lambda s: f"sqlcmd -S sql01 -U sa -P {s} -Q 'SELECT 1'",
    lambda s: f"mongosh mongodb://db:27017/app -u {user()} -p {s}",
    lambda s: f"mongodump --host db -u {user()} -p {s} --out /backup",
    lambda s: f"ldapsearch -x -D cn=admin,dc=example,dc=org -w {s} -b dc=example,dc=org",
    lambda s: f"zip -P {s} secrets.zip creds.txt",
    lambda s: f"7z a -p{s} backup.7z /srv/data",
    lambda s: f"smbclient //fs01/share -U {user()}%{s} -c ls",
    lambda s: f"sshpass -p '{s}' ssh deploy@{host()}",
    lambda s: f"mysql -u{user()} -p{s} -h {host()} app",
    lambda s: f"mysqldump -u root -p'{s}' --all-databases",
    lambda s: f"curl -u {user()}:{s} https://api.example.com/v1/deploy",
    lambda s: f"http POST https://api.example.com/login Authorization:'Bearer {s}'",
    lambda s: f"http GET https://api.example.com/items X-API-Key:{s}",
    lambda s: f"http --form POST https://api.example.com/session username={user()} password={s}",
    lambda s: f"wget --user={user()} --password={s} https://files.example.com/a.tgz",
    lambda s: f"rabbitmqctl add_user {user()} {s}",
    lambda s: f"ipmitool -I lanplus -H 10.0.0.5 -U admin -P {s} power status",
    lambda s: f"psql \"host={host()} user={user()} password={s} dbname=app\"",
]
for i in range(3):
    for f in cli_pos:
        s = pw()
        pos("cli_tool_flags", [s], wrap(f(s)))
cli_neg = [
    f"docker login -u {user()} --password-stdin registry.example.com",
    "redis-cli -h redis.cache.local -p 6379 ping",
    "mysql -u app -p -h db-01.internal app",
    "mysql -h db-01.internal -P 3306 -u app --protocol=tcp",
    "htpasswd -B -c /etc/nginx/.htpasswd admin",
    "keytool -list -v -keystore /etc/ssl/app.jks",
    "keytool -importcert -storepass:env STOREPASS -keystore app.jks -file ca.pem",
    "openssl pkcs12 -export -in c.pem -out c.p12 -passout env:P12_PASSWORD",
    "openssl rsa -in enc.key -passin file:/run/secrets/key_pass -out dec.key",
    "openssl req -new -key app.key -out app.csr -subj /CN=app",
    "zip -r backup.zip /srv/app",
    "7z x archive.7z -o/tmp/out",
    "ssh -p 2222 deploy@bastion",
    "scp -P 2222 a.tgz deploy@bastion:/tmp",
    "psql -h db -p 5432 -U app -d app -c 'select 1'",
    "mongosh --port 27017 --eval 'db.stats()'",
    "ldapsearch -x -W -D cn=admin,dc=example,dc=org -b dc=example,dc=org",
    "az storage account keys list --account-name deploystore --resource-group rg",
    "vault write auth/approle/role/deploy secret_id_ttl=10m token_ttl=20m",
    "vault read -field=secret_id auth/approle/role/deploy/secret-id",
    "http GET https://api.example.com/items Accept:application/json",
    "sqlcmd -S sql01 -E -Q 'SELECT 1'",
    "docker run -d -p 8080:80 nginx:1.27",
    "podman login --get-login registry.example.com",
    "helm upgrade --install web ./chart -f values.yaml --atomic",
    "curl -sS -u \"$API_USER:$API_PASSWORD\" https://api.example.com/v1/health",
    "redis-cli -a \"$REDIS_PASSWORD\" ping",
    "sshpass -e ssh deploy@bastion uptime",
    "rabbitmqctl list_users",
    "git commit -m 'rotate the db password in vault'",
    "wget --ask-password https://files.example.com/a.tgz",
    "zip -e secrets.zip creds.txt",
    "ipmitool -I lanplus -H 10.0.0.5 -U admin -E power status",
    "smbclient -L //fs01 -N",
    "docker login registry.example.com",
]
for t in cli_neg:
    neg("cli_tool_flags", wrap(t))
    neg("cli_tool_flags", t)

# --- argv arrays ------------------------------------------------------------
argv_pos = [
    lambda s: ["mysql", "-uapp", "-p" + s, "-h", host()],
    lambda s: ["psql", "--password", s, "-h", host()],
    lambda s: ["docker", "login", "-u", user(), "-p", s, "registry.example.com"],
    lambda s: ["redis-cli", "-a", s, "ping"],
    lambda s: ["keytool", "-list", "-keystore", "a.jks", "-storepass", s],
    lambda s: ["openssl", "pkcs12", "-export", "-passout", "pass:" + s],
    lambda s: ["sshpass", "-p", s, "ssh", "deploy@bastion"],
    lambda s: ["htpasswd", "-b", "/etc/nginx/.htpasswd", user(), s],
    lambda s: ["curl", "-H", "Authorization: Bearer " + s, "https://api.example.com"],
    lambda s: ["mytool", "--api-key", s, "--verbose"],
    lambda s: ["vault", "write", "auth/approle/login", "secret_id=" + s],
    lambda s: ["sqlcmd", "-S", "sql01", "-U", "sa", "-P", s],
]
for i in range(3):
    for f in argv_pos:
        s = pw()
        argv = f(s)
        k = i % 3
        if k == 0:
            pos("argv_arrays", [s], body={"cmd": argv, "rc": 0})
        elif k == 1:
            pos("argv_arrays", [s], body={"invocation": {"module_args": {"argv": argv}}, "changed": True})
        else:
            pos("argv_arrays", [s], json.dumps({"cmd": argv, "rc": 0}))
argv_neg = [
    ["docker", "run", "-p", "8080:80", "nginx"], ["psql", "-p", "5432", "-U", "app"], ["mysql", "-u", "app", "-p"],
    ["ssh", "-p", "2222", "bastion"], ["git", "commit", "-m", "rotate password"], ["redis-cli", "-p", "6379", "ping"],
    ["keytool", "-list", "-keystore", "a.jks"], ["docker", "login", "--password-stdin", "registry.example.com"],
    ["openssl", "pkcs12", "-passout", "env:P12_PASS"], ["systemctl", "restart", "nginx"], ["mytool", "--token-file", "/run/secrets/t"],
    ["curl", "-H", "Accept: application/json", "https://api.example.com/auth/status"],
]
for a in argv_neg:
    neg("argv_arrays", body={"cmd": a, "rc": 0})
    neg("argv_arrays", json.dumps({"cmd": a, "rc": 0}))
neg("argv_arrays", body={"stdout_lines": ["Login Succeeded", "WARNING! Your password will be stored unencrypted in /root/.docker/config.json."]})
neg("argv_arrays", body={"stdout_lines": ["-p", "5432", "ready"]})

# --- user/password@host connect strings ---------------------------------------
conn_pos = [
    lambda u, s: f"sqlplus {u}/{s}@ORCL @migrate.sql",
    lambda u, s: f"sqlplus -s {u}/{s}@//db01.example.net:1521/APP",
    lambda u, s: f"expdp system/{s}@PROD schemas=APP directory=DUMP",
    lambda u, s: f"impdp {u}/{s}@orclpdb dumpfile=app.dmp",
    lambda u, s: f"rman target sys/{s}@PRODDB",
    lambda u, s: f"sqlldr userid={u}/{s}@ORCL control=load.ctl",
    lambda u, s: f"dgmgrl sys/{s}@primary 'show configuration'",
    lambda u, s: f"SQL> connect {u}/{s}@db01:1521/svc",
]
for i in range(4):
    for f in conn_pos:
        s = r(10) + rnd.choice(["", "_x", "9"])
        pos("connect_strings", [s], wrap(f(rnd.choice(["scott", "app_owner", "system", "c##deploy"]), s)))
for t in ["sqlplus / as sysdba", "sqlplus -s /nolog @init.sql", "sqlplus app@ORCL", "rman target /",
          "npm install @babel/core@7.24.0", "connect to db01:1521/svc@primary failed", "expdp parfile=/opt/exp.par",
          "git clone git@github.com:org/app.git", "pip install pkg@git+https://github.com/org/pkg", "imp help=y",
          "sql> select 1 from dual", "connect / as sysdba", "sqlldr control=load.ctl log=/tmp/load.log"]:
    neg("connect_strings", t)
    neg("connect_strings", wrap(t))

# --- Authorization schemes other than Basic/Bearer ----------------------------
schemes = ["Splunk", "SSWS", "GenieKey", "Token", "ApiKey", "Api-Key", "OAuth", "Negotiate", "DSN", "SharedKey", "MAC", "Key"]
for i, sch in enumerate(schemes * 3):
    s = r(8) + "-" + r(4) + "-" + r(12)
    k = i % 4
    if k == 0: pos("auth_schemes", [s], f"curl -H 'Authorization: {sch} {s}' https://hec.example.com:8088/services/collector")
    elif k == 1: pos("auth_schemes", [s], f"> GET /api/v1/items HTTP/1.1\n> Authorization: {sch} {s}\n> Accept: */*")
    elif k == 2: pos("auth_schemes", [s], json.dumps({"headers": {"Authorization": f"{sch} {s}", "Accept": "application/json"}}))
    else: pos("auth_schemes", [s], body={"url": "https://api.example.com", "headers": {"Authorization": f"{sch} {s}"}})
for t in ["< HTTP/1.1 401 Unauthorized: Authorization header missing", "WWW-Authenticate: Basic realm=\"deploy\"",
          "authorization: required for /admin", "\"authorization_endpoint\": \"https://login.example.com/oauth2/authorize\"",
          "mongodb://db01:27017/app?authSource=admin&replicaSet=rs0", "ldap://dir.example.org/?auth_mechanism=EXTERNAL",
          "Authorization failed for user deploy", "check authorization policy: allow", "auth_type=oauth2 auth_method=client_secret_post",
          "{\"token_endpoint\": \"https://login.example.com/oauth2/token\", \"issuer\": \"https://login.example.com\"}",
          "the Authorization header uses the Splunk scheme", "Authorization: Bearer", "authentication succeeded for deploy",
          "https://login.example.com/.well-known/openid-configuration?auth=1", "X-Auth-Scheme: Splunk"]:
    neg("auth_schemes", t)

# --- tokens in URL paths ----------------------------------------------------------
for i in range(12):
    tok = r(9, string.digits) + ":AA" + r(33, A + "_-")
    s2 = r(32, A)
    pos("url_path_tokens", [tok], f"curl -s https://api.telegram.org/bot{tok}/sendMessage -d chat_id=-1001 -d text=deployed")
    pos("url_path_tokens", [tok], json.dumps({"url": f"https://api.telegram.org/bot{tok}/getUpdates", "status": 200}))
    pos("url_path_tokens", [s2], f"POST https://hooks.example.com/token/{s2}/notify 200")
for t in ["GET /api/token/refresh 200", "https://api.telegram.org/bot/status", "/v1/auth/token/lookup-self",
          "POST /oauth/token 200 12ms", "https://example.com/token/introspect", "GET /secret/list?page=2",
          "https://docs.example.com/api_key/rotation-guide", "/auth/login?next=/dashboard", "https://status.example.com/key/incidents"]:
    neg("url_path_tokens", t)
    neg("url_path_tokens", "curl -s " + t)

# --- config files printed to output --------------------------------------------------
for i in range(10):
    s = pw(); s2 = pw(); s3 = punct_secret()
    pos("config_files", [s], f"<settings>\n  <servers>\n    <server>\n      <id>nexus</id>\n      <username>{user()}</username>\n      <password>{s}</password>\n    </server>\n  </servers>\n</settings>")
    pos("config_files", [s2], f"<packageSourceCredentials>\n  <nexus>\n    <add key=\"Username\" value=\"{user()}\" />\n    <add key=\"ClearTextPassword\" value=\"{s2}\" />\n  </nexus>\n</packageSourceCredentials>")
    pos("config_files", [s3], rnd.choice([f"DJANGO_SECRET_KEY={s3}", f"export SECRET_KEY_BASE={s3}", f"JWT_SECRET={s3}\nPORT=8080",
                                          f"NEXTAUTH_SECRET={s3} node server.js", f"app.secret_key = {s3}", f"SECRET_KEY='{s3}'"]))
    s4 = pw()
    pos("config_files", [s4], rnd.choice([f"<passphrase>{s4}</passphrase>", f"<keystorePassword>{s4}</keystorePassword>",
                                          f"<property name=\"db.password\" value=\"{s4}\"/>", f"<add key=\"ApiToken\" value=\"{s4}\" />"]))
for t in ["<password>${env.NEXUS_PASSWORD}</password>", "<passwordPolicy>strict</passwordPolicy>",
          "<add key=\"ClearTextPassword\" value=\"%NUGET_PASSWORD%\" />", "<add key=\"globalPackagesFolder\" value=\"/srv/nuget\" />",
          "SECRET_KEY=", "SECRET_KEY=${SECRET_KEY}", "<server><id>nexus</id><username>deploy</username></server>",
          "<password/>", "<add key=\"http_proxy\" value=\"http://proxy:3128\" />", "DEBUG=False\nALLOWED_HOSTS=*",
          "<tokenEndpoint>https://login.example.com/token</tokenEndpoint>", "<passwordFile>/etc/app/pw</passwordFile>",
          "JWT_SECRET_FILE=/run/secrets/jwt", "<secretName>db-credentials</secretName>"]:
    neg("config_files", t)
    neg("config_files", "cat settings.xml\n" + t)

# --- Kubernetes-style name/value pairs ---------------------------------------------
for i in range(8):
    s = aws_secret(); s2 = pw(); s3 = pw()
    pos("k8s_name_value", [s], f"env:\n- name: AWS_ACCESS_KEY_ID\n  value: AKIA{r(16, string.ascii_uppercase + '234567')}\n- name: AWS_SECRET_ACCESS_KEY\n  value: {s}")
    pos("k8s_name_value", [s2], f"        - name: DB_PASSWORD\n          value: \"{s2}\"\n        - name: LOG_LEVEL\n          value: info")
    pos("k8s_name_value", [s3], json.dumps({"env": [{"name": "API_TOKEN", "value": s3}, {"name": "REGION", "value": "eu-west-1"}]}))
    s4 = pw()
    pos("k8s_name_value", [s4], body={"item": {"key": "db_password", "value": s4}, "changed": True})
    s5 = pw()
    pos("k8s_name_value", [s5], body={"env": [{"name": "REGISTRY_PASSWORD", "value": s5}]})
for t in ["env:\n- name: AWS_REGION\n  value: eu-west-1\n- name: LOG_LEVEL\n  value: debug",
          "- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef:\n      name: db\n      key: password",
          "{\"name\": \"LOG_LEVEL\", \"value\": \"debug\"}", "ok: [web-01] => (item={'key': 'release', 'value': '1.4.2'})",
          "- name: TOKEN_TTL\n  value: \"3600\"", "{\"name\": \"DB_PASSWORD\", \"value\": \"\"}", "- name: API_TOKEN\n  value: ${API_TOKEN}"]:
    neg("k8s_name_value", t)
neg("k8s_name_value", body={"item": {"key": "release", "value": "1.4.2"}})
neg("k8s_name_value", body={"env": [{"name": "REGION", "value": "eu-west-1"}]})

# --- ODBC and connection strings ----------------------------------------------------------
for i in range(12):
    s = pw().replace(";", "")
    t = rnd.choice([f"Driver={{ODBC Driver 18 for SQL Server}};Server=sql01;Database=app;Uid={user()};Pwd={s};Encrypt=yes",
                    f"DSN=warehouse;UID={user()};PWD={s}", f"Server=tcp:sql01,1433;User ID={user()};Password={s};TrustServerCertificate=True",
                    f"conn = pyodbc.connect('DRIVER={{PostgreSQL}};SERVER={host()};UID={user()};PWD={s}')"])
    pos("odbc_connection_strings", [s], t)
for t in ["PWD=/home/deploy", "OLDPWD=/srv/app", "Driver={ODBC Driver 18};Server=sql01;Trusted_Connection=yes;",
          "DSN=warehouse;UID=app;PWD=;", "cd $PWD/build", "Server=sql01;Integrated Security=SSPI;Database=app"]:
    neg("odbc_connection_strings", t)

# --- URL passwords with unencoded '/', '@' -------------------------------------------------
for i in range(12):
    s = r(5) + "/" + r(6) + rnd.choice(["", "@x" + r(3), "/" + r(2)])
    pos("url_passwords", [s], rnd.choice([f"DATABASE_URL=postgres://{user()}:{s}@{host()}:5432/app",
                                          f"git clone https://{user()}:{s}@git.example.com/org/app.git",
                                          f"amqp://{user()}:{s}@mq01:5672/vhost"]))
for t in ["https://example.com:8443/users/@me", "http://localhost:3000/profile/@alice", "https://registry.npmjs.org:443/@babel/core",
          "https://git.example.com/org/app.git@v1.2.0", "ssh://git@git.example.com:2222/org/app.git", "mongodb://db01:27017/app?authSource=admin",
          "postgres://app@db:5432/app", "https://user@example.com/path", "redis://:${REDIS_PASSWORD}@redis:6379/0", "https://example.com:443/a/b@c/d"]:
    neg("url_passwords", t)

# --- values with '&', spaces, long values -------------------------------------------------------
for i in range(10):
    s = "Amp&Pw" + r(6) + "&" + r(4)
    pos("amp_values", [s, s.split("&")[-1]], rnd.choice([f"password={s}", f"export DB_PASSWORD={s}", f"-e admin_password={s}"]))
for t in ["https://example.com/reset?password_reset=true&user=alice", "GET /login?token=&next=/home", "a=1&password=&b=2",
          "https://example.com/cb?code=ok&state=xyz"]:
    neg("amp_values", t)
for i in range(10):
    s = words(4)
    pos("yaml_spaces", [s], rnd.choice([f"db:\n  password: {s}\n  host: db01", f"passphrase: {s}", f"  admin_password: {s}  # rotated monthly"]))
for t in ["password: must be at least 12 characters", "password: Please enter your password", "password_hint: the usual one",
          "# password: set in vault", "description: the password for the db user", "password: changed", "token: not set"]:
    neg("yaml_spaces", t)
for i in range(6):
    s = r(3000 + i * 100)
    pos("long_values", [s], json.dumps({"password": s, "user": "app"}) if i % 2 else f"api_token=\"{s}\" ./deploy.sh")
neg("long_values", "description=\"" + "lorem ipsum " * 300 + "\"")
neg("long_values", json.dumps({"notes": "x" * 3000}))

# --- AWS secret keys split over two lines ------------------------------------------------------------
for i in range(10):
    s = aws_secret(); cut = rnd.randrange(20, 36)
    pos("split_aws_keys", [s[:cut], s[cut:]], rnd.choice([f"aws_secret_access_key = {s[:cut]}\n{s[cut:]}\nregion = eu-west-1",
                                                         f"AWS_SECRET_ACCESS_KEY={s[:cut]}\n  {s[cut:]}"]))
for t in ["aws_secret_access_key = \nregion = eu-west-1", "aws_secret_access_key_id_ref = prod/deploy\nversion = 3"]:
    neg("split_aws_keys", t)

# --- secret key names ---------------------------------------------------------------------------
keys = ["VAULT_SECRET_ID", "secret_id", "pass", "PASS", "client_key", "ssh_key", "encryption_key", "ENCRYPTION_KEY", "license_key",
        "x_" * 70 + "password", "signing_key", "deploy_key", "sshKey", "clientKey", "storepass"]
for i, k in enumerate(keys * 2):
    s = pw()
    if i % 3 == 0: pos("secret_key_names", [s], f"{k}={s}")
    elif i % 3 == 1: pos("secret_key_names", [s], json.dumps({k: s, "region": "eu"}))
    else: pos("secret_key_names", [s], body={k: s, "changed": False})
for k, v in [("secret_id_ttl", "3600"), ("public_key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + r(20)), ("primary_key", "id"),
             ("key", "nginx"), ("ssh_key_path", "~/.ssh/id_ed25519"), ("passed", "12"), ("pass_count", "3"), ("kms_key", "alias/deploy"),
             ("key_name", "deploy-2026"), ("sort_key", "created_at"), ("secret_arn", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"),
             ("cache_key", "v3-deps-" + r(8, "0123456789abcdef")), ("host_key_checking", "False"), ("compass", "north")]:
    neg("secret_key_names", f"{k}={v}")
    neg("secret_key_names", body={k: v})

# --- secrets inside map keys ---------------------------------------------------------------------
for i in range(8):
    g = ghp(); s = pw()
    pos("map_keys", [g], body={g: 1, "status": "ok"})
    pos("map_keys", [s], body={f"https://bob:{s}@git.example.com/org/app.git": {"fetched": True}})
neg("map_keys", body={"https://git.example.com/org/app.git": 1, "ansible.task.name": "clone"})
neg("map_keys", body={"web-01": {"changed": True}, "db-01": {"changed": False}})
neg("map_keys", body={"token_ttl": 3600, "password_policy": "strict"})

# --- encodings --------------------------------------------------------------------------------------
for i in range(8):
    u, s = user(), pw()
    cfg = json.dumps({"auths": {"registry.example.com": {"auth": b64(f"{u}:{s}")}}})
    enc = b64(cfg)
    pos("encodings", [enc], f"kubectl get secret regcred -o yaml\ndata:\n  .dockerconfigjson: {enc}\ntype: kubernetes.io/dockerconfigjson")
    pos("encodings", [enc], f"echo {enc} > /tmp/cfg.b64")
    p = pw()
    pos("encodings", [b64(p)], rnd.choice([f"echo {b64(p)} | base64 -d", f"echo '{b64(p)}' | base64 --decode > /etc/app/pw", f"base64 -d <<< {b64(p)}"]))
    pos("encodings", [p], f"echo -n '{p}' | base64")
    s2 = pw()
    pos("encodings", [b64(s2)], f"apiVersion: v1\nkind: Secret\ndata:\n  password: {b64(s2)}")
    s3 = pw()
    pos("encodings", [s3], json.dumps({"msg": json.dumps({"password": s3, "user": "app"})}))  # escaped twice
    s4 = pw()
    pos("encodings", [s4], "{\"db_\\u0070assword\": \"" + s4 + "\"}")
    s5 = pw()
    pos("encodings", [s5], "{\"\\u0070\\u0061ssword\": \"" + s5 + "\", \"user\": \"app\"}")
for t in ["echo $TOKEN | base64 -d", "cat ca.crt | base64 -w0", "echo \"${PASSWORD}\" | base64",
          "data:\n  ca.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJ" + r(20),
          "eyJuYW1lIjoid2ViIiwicmVwbGljYXMiOjN9", "sha256:" + r(64, "0123456789abcdef"),
          "{\"msg\": \"{\\\"password_policy\\\": \\\"strict\\\"}\"}", "\\u0070ath=/usr/bin", "content: " + b64("hello world, nothing to see here")]:
    neg("encodings", t)

# --- PEM keys in stdout and stdout_lines -----------------------------------------------------------------
def der_key(kind):
    prefix = {"rsa": "MIIEowIBAAKCAQEA", "pkcs8": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ", "ec": "MHcCAQEEI", "openssh": "b3BlbnNzaC1rZXktdjEAAAAA"}[kind]
    body = prefix + r(64 - len(prefix), A + "+/")
    return [body] + [r(64, A + "+/") for _ in range(5)] + [r(20, A + "+/") + "=="]
for i, kind in enumerate(["rsa", "pkcs8", "ec", "openssh"] * 3):
    lines = der_key(kind)
    label = {"rsa": "RSA PRIVATE KEY", "pkcs8": "PRIVATE KEY", "ec": "EC PRIVATE KEY", "openssh": "OPENSSH PRIVATE KEY"}[kind]
    pem = "\n".join([f"-----BEGIN {label}-----"] + lines + [f"-----END {label}-----"])
    pos("pem_lines", lines, body={"stdout": pem, "stdout_lines": pem.split("\n"), "rc": 0})
    pos("pem_lines", lines, body={"results": [{"stdout": pem, "stdout_lines": pem.split("\n"), "item": "app"}]})
    pos("pem_lines", lines, body={"stdout_lines": pem.split("\n")})
    pos("pem_lines", lines, "\n".join(lines))  # a base64 key block on its own
for i in range(4):
    cert = ["MIIDdzCCAl+gAwIBAgIE" + r(44, A + "+/")] + [r(64, A + "+/") for _ in range(4)]
    pem = "\n".join(["-----BEGIN CERTIFICATE-----"] + cert + ["-----END CERTIFICATE-----"])
    neg("pem_lines", body={"stdout": pem, "stdout_lines": pem.split("\n")})
    pub = "\n".join(["-----BEGIN PUBLIC KEY-----", "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + r(20, A + "+/"), r(64, A + "+/"), "-----END PUBLIC KEY-----"])
    neg("pem_lines", body={"stdout": pub, "stdout_lines": pub.split("\n")})
    neg("pem_lines", "\n".join(cert))

# --- names and references of secrets; placeholders -------------------------------------------------------
for t in ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-password-AbCdEf",
          "SecretId: arn:aws:secretsmanager:us-east-1:123456789012:secret:deploy-token-Xy12Zw",
          "helm upgrade db bitnami/postgresql --set auth.existingSecret=db-credentials",
          "tls:\n  - hosts: [app.example.com]\n    secret=\"api-tls\"", "secret: api-tls", "password = var.db_password",
          "PASSWORD_ENV_VAR=DB_PASSWORD", "token: <your-token-here>", "STRIPE_KEY=sk_live_...", "api_key: \"\"", "password=",
          "password: ~", "api_key: null", "token: ${{ secrets.DEPLOY_TOKEN }}", "password: \"{{ vault_db_password }}\"",
          "db_password: !vault |", "op://deploy/db/password", "secretKeyRef: {name: db, key: password}",
          "projects/acme/secrets/db-password/versions/latest", "token: xxxxxxxxxxxxxxxx", "password: ********",
          "secret_name: prod/db", "github_token: $GITHUB_TOKEN", "password: REPLACE_ME_PASSWORD_ENV",
          "DB_PASSWORD_FILE=/run/secrets/db_password", "client_secret: <client secret>"]:
    neg("references_placeholders", t)

# --- error messages and publishable configs ------------------------------------------------------------------
for t in ["ERROR 1045 (28000): Access denied for user 'app'@'10.0.3.17' (using password: YES)",
          "ERROR 1045 (28000): Access denied for user 'root'@'localhost' (using password: NO)",
          "FATAL:  password authentication failed for user \"app\"", "Login failed for user 'sa'. Reason: Password did not match",
          "redis: NOAUTH Authentication required.", "WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
          "mysql: [Warning] Using a password on the command line interface can be insecure.",
          "Permission denied (publickey,password).", "sudo: a password is required", "token expired at 12:00; refreshing"]:
    neg("error_messages", t)
for i in range(4):
    fb = {"apiKey": "AIza" + r(35, A + "_-"), "authDomain": "app-" + r(4).lower() + ".firebaseapp.com", "projectId": "app",
          "storageBucket": "app.appspot.com", "messagingSenderId": r(12, string.digits), "appId": "1:" + r(12, string.digits) + ":web:" + r(22, "0123456789abcdef")}
    neg("publishable_configs", "const firebaseConfig = " + json.dumps(fb) + ";")
    neg("publishable_configs", body=fb)

# --- ordinary deployment lines with secret words and no secret ---------------------------------------------
ordinary = ["TASK [vault : read the db secret] ok: [web-01]", "changed: [web-01] => (item=password-policy.conf)",
    "token bucket refill rate 100/s, burst 20", "secret rotation completed for db-credentials", "key_exchange: curve25519-sha256",
    "ssh-keyscan github.com >> ~/.ssh/known_hosts", "apt-key adv --keyserver keyserver.ubuntu.com --recv-keys 0x7F0CEB10",
    "ok: [web-02] => (item={'key': 'nginx', 'value': {'state': 'started'}})", "Using /etc/ansible/ansible.cfg as config file",
    "auth.log rotated, 3 files kept", "PLAY RECAP web-01 : ok=12 changed=3 unreachable=0 failed=0 skipped=2",
    "Authenticating with public key \"deploy@ci\" from agent", "keyring: /usr/share/keyrings/docker.gpg", "passenger_count=4 tokens=128",
    "--password-file=/run/secrets/db --token-ttl=3600", "secret_key_base is read from credentials.yml.enc", "jwt: verified (alg=RS256, kid=2026-01)",
    "credential helper: osxkeychain", "Cookie policy: strict", "authorized_keys updated for deploy", "bypass_cache=true passed=12",
    "Creating secret prod/db-password (version 3)", "kubectl create secret generic db --from-file=./db.env",
    "helm secrets decrypt values.enc.yaml", "vault kv get -field=password secret/db", "aws secretsmanager get-secret-value --secret-id prod/db",
    "gcloud secrets versions access latest --secret=db-password", "az keyvault secret show --vault-name kv --name db-password",
    "export VAULT_ADDR=https://vault.example.com:8200", "Password for 'https://git.example.com':", "Enter passphrase for key '/root/.ssh/id_ed25519':",
    "passwd: password updated successfully", "token=$(cat /run/secrets/token)", "curl -H \"Authorization: Bearer $TOKEN\" https://api.example.com",
    "PRIVATE_KEY_PATH=/etc/ssl/private/app.key", "ssl_certificate_key /etc/nginx/ssl/app.key;", "secrets: inherit",
    "permissions: id-token: write", "api_key_header: X-API-Key", "client_secret_expires_at: 0", "token_type: Bearer",
    "grant_type=client_credentials&scope=deploy", "response_type=code&client_id=web&redirect_uri=https://app.example.com/cb",
    "ERROR: password authentication failed", "WARN deprecated: --secret flag, use --secret-file", "docker secret ls",
    "git config --global credential.helper store", "ANSIBLE_VAULT_PASSWORD_FILE=~/.vault_pass.txt", "no_log: true",
    "register: token_result", "when: api_key is defined", "loop: \"{{ secrets | dict2items }}\"", "secret_id_num_uses: 0",
    "public_key_pem: present", "keystore type: PKCS12", "KeyError: 'password'", "TypeError: token must be a string",
    "sudo: 3 incorrect password attempts", "Auth0 tenant: example", "OAuth2 client registered: web", "x-auth-request-user: alice"]
for t in ordinary:
    neg("ordinary_lines", t)

# --- near misses of the vendor token rules: a prefix with too few or wrong bytes, ----------
# a documentation placeholder, a prefix in a word. Never a valid token layout.
HEX = "0123456789abcdef"
vendor_near = [
    "ghp_" + r(12), "gho_" + r(20) + " (truncated)", "github_pat_" + r(20), "glpat-" + r(8), "xoxb-" + r(6, string.digits),
    "AKIA" + r(10, string.ascii_uppercase), "ASIA-region-" + r(4).lower(), "AIza" + r(12), "ya29.", "hvs." + r(6), "npm_" + r(12),
    "dop_v1_" + r(20, HEX), "SG." + r(8), "SK" + r(20, HEX), "key-" + r(16, HEX), r(20, HEX) + "-us5", "sk_live_...", "rk_test_",
    "dckr_pat_" + r(6), "pypi-" + r(12), "shpat_" + r(16, HEX), "lin_api_" + r(10), "NRAK-" + r(8), "hf_" + r(12),
    "eyJ" + r(6) + " is not a token", "dapi" + r(16, HEX), "pul-" + r(16, HEX), "whsec_" + r(8), "GOCSPX-" + r(10),
]
for t in vendor_near:
    neg("vendor_near_misses", f"token prefix check: {t}")
for w in ["skip", "asking", "desk", "risky", "whisky", "sketch", "akimbo", "hvs.org", "npm_config_cache", "glpat_rotation_days",
          "keystone", "keyboard", "monkey-patch", "ghost_writer", "gho_st", "doctype", "eyJumpingFox", "dapibus", "pulpit"]:
    neg("vendor_near_misses", f"ok: [web-01] => (item={w})")

# --- near misses of the tool-argument rules ------------------------------------------------------
tool_near = [
    "mysql --defaults-extra-file=/etc/mysql/app.cnf -e 'select 1'", "mysqladmin -u root -p status", "mysql -P 3306 -h db app",
    "mariadb --login-path=app", "sshpass -f /run/secrets/ssh_pw ssh deploy@bastion", "sshpass -d 3 ssh deploy@bastion",
    "openssl s_client -connect api.example.com:443 -servername api.example.com", "openssl passwd -6 -stdin",
    "openssl enc -d -aes-256-cbc -in f.enc -out f -pass env:ENC_PASSWORD", "openssl pkcs12 -in a.p12 -nokeys -passin fd:3",
    "htpasswd -D /etc/nginx/.htpasswd olduser", "htpasswd -v /etc/nginx/.htpasswd admin", "keytool -printcert -file ca.crt",
    "vault write -f auth/approle/role/deploy/secret-id", "vault kv put secret/app password=@/run/secrets/pw",
    "az login --identity", "az storage blob list --account-name deploystore --auth-mode login",
    "oc login --token-file=/var/run/secrets/token https://api.example.com:6443", "oc get pods -n app",
    "cf login -a https://api.example.com --sso", "cf push app -p ./build", "7z x backup.7z -o/srv/restore",
    "zip -q -r app.zip dist/", "unzip -o app.zip -d /srv/app", "rar a -m5 backup.rar /srv/data",
    "redis-cli --no-auth-warning -h redis.cache.local INFO", "docker login --username ci --password-stdin registry.example.com",
    "helm registry login oci.example.com --username ci --password-stdin", "podman login --get-login",
    "ldapsearch -x -y /run/secrets/ldap_pw -D cn=admin,dc=example,dc=org", "ipmitool -I lanplus -H 10.0.0.5 -U admin -f /run/secrets/ipmi power status",
    "smbclient //fs01/share -A /etc/samba/creds -c ls", "mongosh --host db --authenticationDatabase admin -u app",
    "sqlcmd -S sql01 -U sa -Q 'SELECT 1'", "curl -u deploy https://api.example.com/v1/health",
    "wget --password-file=/run/secrets/pw https://files.example.com/a.tgz", "rabbitmqctl change_password deploy",
    "sqlplus -L app@ORCL @check.sql", "expdp app@PROD parfile=exp.par", "rman target / catalog rman@RCAT",
]
for t in tool_near:
    neg("tool_near_misses", wrap(t))
    neg("tool_near_misses", t)

# --- near misses of the encoding rules ------------------------------------------------------------
for t in ["echo \"$DB_PASSWORD\" | base64 -w0", "echo -n \"${TOKEN}\" | base64", "printf '%s' \"$SECRET\" | base64 -d",
          "base64 -d /etc/app/cert.b64 > cert.pem", "base64 --decode < payload.b64", "echo ok | base64",
          "data:\n  tls.crt: " + b64("-----BEGIN CERTIFICATE-----\nMIIB" + r(20) + "\n-----END CERTIFICATE-----"),
          "data:\n  config.json: " + b64(json.dumps({"replicas": 3, "image": "web:1.4.2"})),
          "annotations:\n  checksum/config: " + r(64, HEX), "kubectl create secret generic db --from-literal=user=app --dry-run=client -o yaml",
          "image: registry.example.com/web@sha256:" + r(64, HEX), "echo " + b64("deploy finished on web-01") + " | base64 -d"]:
    neg("encoding_near_misses", t)

# --- near misses of the XML and name/value rules --------------------------------------------------
for t in ["<passwordPolicy>strict</passwordPolicy>", "<tokenUrl>https://login.example.com/oauth2/token</tokenUrl>",
          "<keyAlias>app</keyAlias>", "<keystoreType>PKCS12</keystoreType>", "<password></password>", "<password>${env.NEXUS_PASSWORD}</password>",
          "<secretKeyRef name=\"db\" key=\"password\"/>", "<authMethod>ldap</authMethod>", "<tokenLifetime>3600</tokenLifetime>",
          "<credentialsId>nexus-deploy</credentialsId>", "<passwordEncoding>bcrypt</passwordEncoding>", "<secretName>api-tls</secretName>",
          "<add key=\"ClearTextPassword\" value=\"\" />", "<add key=\"PasswordPolicy\" value=\"strict\" />",
          "<add key=\"Username\" value=\"deploy\" />", "<property name=\"db.password.file\" value=\"/etc/app/pw\"/>"]:
    neg("config_near_misses", t)
for body in [{"name": "DB_PASSWORD_FILE", "value": "/run/secrets/db"}, {"name": "TOKEN_TTL", "value": "3600"},
             {"name": "AUTH_MODE", "value": "oidc"}, {"key": "password_policy", "value": "strict"},
             {"name": "SECRET_NAME", "value": "db-credentials"}, {"name": "API_KEY_HEADER", "value": "X-API-Key"},
             {"env": [{"name": "PASSWORD_MIN_LENGTH", "value": "12"}, {"name": "TOKEN_ISSUER", "value": "https://login.example.com"}]}]:
    neg("config_near_misses", body=body)
    neg("config_near_misses", json.dumps(body))

# --- error messages: near misses, and secrets inside them ---------------------------------------------
for t in ["ORA-01017: invalid username/password; logon denied", "remote: Invalid username or password.",
          "fatal: Authentication failed for 'https://git.example.com/org/app.git/'",
          "fatal: could not read Username for 'https://github.com': terminal prompts disabled",
          "Error from server (NotFound): secrets \"db-credentials\" not found",
          "error: token has invalid claims: token is expired", "401 Unauthorized: invalid bearer token",
          "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.0.3.17 user=root",
          "psql: error: connection to server at \"db\" (10.0.3.17), port 5432 failed: FATAL:  password authentication failed for user \"app\"",
          "An error occurred (ExpiredTokenException) when calling the GetCallerIdentity operation: The security token included in the request is expired",
          "Error response from daemon: Get \"https://registry.example.com/v2/\": unauthorized: authentication required",
          "vault: Error reading secret/data/db: Code: 403. Errors: * permission denied",
          "x509: certificate signed by unknown authority", "hint: the password must contain a digit",
          "ERROR 1045 (28000): Access denied for user 'deploy'@'web-01' (using password: YES)",
          "AUTH failed: WRONGPASS invalid username-password pair or user is disabled.",
          "mongosh: MongoServerError: Authentication failed.", "ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey]",
          "Error: Kubernetes cluster unreachable: the server has asked for the client to provide credentials",
          "terraform: Error: No valid credential sources found for AWS Provider."]:
    neg("error_messages", t)
    neg("error_messages", json.dumps({"msg": t, "failed": True, "rc": 1}))
err_pos = [
    lambda s: f"psql: error: invalid URI query parameter in postgres://app:{s}@db:5432/app?sslmode=bogus",
    lambda s: f"fatal: unable to access 'https://deploy:{s}@git.example.com/org/app.git/': Could not resolve host",
    lambda s: f"Error: mysql -uapp -p{s} -h db-01.internal: exit status 1",
    lambda s: f"command failed: docker login -u ci -p {s} registry.example.com: exit status 1",
    lambda s: f"TASK [db : create user] FAILED! => {{\"msg\": \"password={s} rejected by policy\"}}",
]
for i in range(3):
    for f in err_pos:
        s = pw()
        pos("error_messages", [s], f(s))

# --- near misses of every other catalogue rule: its keyword in text that holds no secret -----------
rule_near = [
    "Your private key has been saved in /home/deploy/.ssh/id_ed25519", "ssh-keygen: Saving private key to /root/.ssh/deploy",
    "grep -c Private-Lines: deploy.ppk", "Found vault header $ANSIBLE_VAULT;1.1;AES256 in group_vars/all/vault.yml",
    "age-keygen: identities start with AGE-SECRET-KEY-1, recipients with age1", "users:\n- name: ci\n  user:\n    client-key-data: DATA+OMITTED",
    "DefaultEndpointsProtocol=https;AccountName=deploystore;AccountKey=;EndpointSuffix=core.windows.net",
    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=${SB_KEY}",
    "https://deploystore.blob.core.windows.net/app/a.tgz?sv=2022-11-02&se=2026-01-01&sig=<signature>",
    "az ad app credential reset prints a secret like xxx8Q~... once", "heroku apps:info --app checkout-prod",
    "fly tokens list: fm2_… (3 tokens)", "GR1348941 registration tokens are deprecated; use glrt- authentication tokens",
    "CCIPAT_ personal tokens are rotated in user settings", "bkua_ token scopes: read_builds, read_pipelines",
    "sonar-scanner -Dsonar.token=$SONAR_TOKEN (a squ_ user token)", "credentials.tfrc.json holds <id>.atlasv1.<token>",
    "//registry.npmjs.org/:_authToken=${NPM_TOKEN}", "twine upload: tokens start with pypi-AgE and are scoped per project",
    "rubygems_version: 3.5.9", "toy2d renderer updated to 1.4.2", "AKCp5 keys are being replaced by identity tokens",
    "doppler service tokens look like dp.st.prd.<id>", "1Password service account tokens start with ops_eyJ",
    "slack: socket mode needs an xapp- app-level token", "POST https://hooks.slack.com/services/<team>/<channel>/<token> skipped: notify disabled",
    "discord: POST /api/webhooks/ returned 404 (webhook deleted)", "teams: webhook.office.com connector retired, use workflows",
    "telegram: chat_id=-1001:AA is not a valid bot id", "square: sq0atp- access tokens expire after 30 days",
    "sentry-cli: auth token (sntrys_...) read from SENTRY_AUTH_TOKEN", "grafana: service account tokens start with glsa_",
    "jira: API tokens start with ATATT3 and are created at id.atlassian.com", "newman: PMAK- keys read from POSTMAN_API_KEY",
    "tailscale up --authkey=tskey-auth-<key> --hostname=web-01", "openai: project keys start with sk-proj-",
    "anthropic: keys start with sk-ant- and are read from ANTHROPIC_API_KEY", "facebook: EAACEdEose0cBA tokens are short-lived",
    "etag: W/\"IBAAKx9" + r(10) + "\"", "data:\n  policy: " + b64("the password policy is strict"),
]
for t in rule_near:
    neg("rule_near_misses", t)

# --- positives beside the near misses above: the same shapes with the secret in place ------------------
for i in range(4):
    s = pw()
    pos("tool_near_misses", [s], wrap(f"vault kv put secret/app password={s}"))
    ph = words(4)
    pos("encoding_near_misses", [b64(ph)], f"echo {b64(ph)} | base64 -d")
    n = r(5, string.digits)
    pos("config_near_misses", [n], f"<server><id>legacy</id><password>{n}</password></server>")
    k = b64(r(48))
    pos("rule_near_misses", [k], f"users:\n- name: ci\n  user:\n    client-key-data: {k}")
    s2 = pw()
    pos("error_messages", [s2], f"ERROR: sshpass -p {s2} ssh deploy@bastion: Permission denied, please try again.")

# --- more near misses for the small categories ----------------------------------------------------------
for t in ["aws_secret_access_key = ${AWS_SECRET_ACCESS_KEY}\nregion = eu-west-1",
          "[default]\naws_access_key_id = AKIA" + r(4, string.ascii_uppercase) + "...\naws_secret_access_key = <redacted>\nregion = eu-west-1",
          "aws_secret_access_key:\n  description: the deploy user's key, from vault\n  required: true",
          "export AWS_SECRET_ACCESS_KEY_FILE=/run/secrets/aws\nexport AWS_REGION=eu-west-1",
          "aws configure set aws_secret_access_key\nusage: aws configure set varname value"]:
    neg("split_aws_keys", t)
for t in ["description=\"" + "rollout notes; " * 200 + "\"", json.dumps({"stdout": "\n".join(["line %d: copying release files" % i for i in range(300)])}),
          "changelog: " + "fixed token refresh race; " * 120, json.dumps({"msg": "password policy: " + "at least 12 characters, " * 100})]:
    neg("long_values", t)
neg("map_keys", body={"password_policy": {"min_length": 12}, "token_ttl": 3600, "secret_name": "db-credentials"})
neg("map_keys", body={"registry.example.com/checkout:1.4.2": {"pulled": True}, "sha256:" + r(64, HEX): "ok"})
neg("map_keys", body={"https://git.example.com/org/app.git@v1.4.2": 1, "ssh://git@git.example.com:2222/org/app.git": 2})
neg("map_keys", body={"AKIA is the access key prefix": 1, "ghp_ tokens are classic PATs": 2})
for t in ["https://example.com/login?user=alice&remember=true&next=%2Fhome", "curl 'https://api.example.com/v1/items?page=2&per_page=50&sort=name'",
          "password_reset=sent&user=alice", "a=1&token_type=bearer&expires_in=3600", "https://example.com/search?q=password+manager&lang=en"]:
    neg("amp_values", t)
for t in ["- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef: {name: db, key: password}", "- name: API_TOKEN\n  value: \"\"",
          "{\"name\": \"PASSWORD_MIN_LENGTH\", \"value\": \"12\"}", "- name: SECRET_ROTATION_DAYS\n  value: \"30\""]:
    neg("k8s_name_value", t)
for t in ["base64 -w0 release.tar.gz > release.b64", "data:\n  ca.crt: " + b64("-----BEGIN CERTIFICATE-----\nMIIC" + r(30) + "\n-----END CERTIFICATE-----"),
          "{\"msg\": \"{\\\"token_ttl\\\": 3600}\"}", "\\u0074oken_ttl: 3600"]:
    neg("encodings", t)
for i in range(2):
    sc = {"apiKey": "AIza" + r(35, A + "_-"), "authDomain": "shop-" + r(4).lower() + ".firebaseapp.com", "projectId": "shop", "appId": "1:" + r(12, string.digits) + ":web:" + r(22, HEX), "messagingSenderId": r(12, string.digits)}
    neg("publishable_configs", "firebase.initializeApp(" + json.dumps(sc) + ")")

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "categories.jsonl")
with open(path, "w") as f:
    for e in out:
        f.write(json.dumps(e) + "\n")
p = sum(1 for e in out if e["polarity"] == "positive"); n = len(out) - p
print(f"{p} positives, {n} negatives")
