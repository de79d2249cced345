#!/bin/sh
# Writes the tls suite's certificates into DIR with the openssl command, at
# test time (none is ever committed). P-256 keys: quick to make and to use.
#
#   ca.pem ca.key            the test CA the clients trust
#   server.pem server.key    CN=localhost; DNS:localhost, IP:127.0.0.1, IP:::1,
#                            IP:10.79.0.2 (the namespace rows' server); by ca
#   expired.pem              the same name and key, valid only on 2020-01-01
#   rogue.pem                the same name and key, issued by another CA
#   selfsigned.pem           the same name and key, signed by itself
#   client.pem client.key    a client certificate (clientAuth) by ca
#
# Usage: test/tls/certs.sh DIR
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# A CA that records what it signs, so that dates can be given exactly.
cat >ca.cnf <<'EOF'
[ca]
default_ca = d
[d]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
[v3_ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
: >index.txt
echo 1000 >serial

ca() {   # ca NAME SUBJECT: a self-signed CA
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -subj "$2" -days 3650 -config ca.cnf -extensions v3_ca -out "$1.pem" 2>/dev/null
}

# sign CSR CA OUT EXTFILE [ca options]: OUT signed by CA, with EXTFILE's extensions
sign() {
    csr=$1 by=$2 out=$3 ext=$4; shift 4
    openssl ca -batch -config ca.cnf -cert "$by.pem" -keyfile "$by.key" -in "$csr" -out "$out" \
        -extfile "$ext" -notext "$@" 2>/dev/null
}

ca ca "/CN=ka test CA"
ca other "/CN=ka other CA"

key server.key
openssl req -new -key server.key -subj "/CN=localhost" -out server.csr 2>/dev/null
cat >server.ext <<'EOF'
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1, IP:10.79.0.2
EOF
sign server.csr ca server.pem server.ext -days 3650
sign server.csr ca expired.pem server.ext -startdate 20200101000000Z -enddate 20200102000000Z
sign server.csr other rogue.pem server.ext -days 3650
openssl req -x509 -new -key server.key -subj "/CN=localhost" -days 3650 -out selfsigned.pem \
    -addext "subjectAltName = DNS:localhost, IP:127.0.0.1" 2>/dev/null

key client.key
openssl req -new -key client.key -subj "/CN=ka test client" -out client.csr 2>/dev/null
cat >client.ext <<'EOF'
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
EOF
sign client.csr ca client.pem client.ext -days 3650
rm -f ./*.csr ./*.ext
