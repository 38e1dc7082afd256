package auth

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// maxSSHKeyLen bounds an authorized_keys line: a 16384-bit RSA key is
// under 3,000 characters.
const maxSSHKeyLen = 8 << 10

// minRSABits is the shortest RSA key accepted.
const minRSABits = 2048

// ErrSSHKey: an SSH public key offered for a credential was refused. The
// wrapping error says why, for the person who pasted it.
var ErrSSHKey = errors.New("invalid SSH public key")

// SSHKey is an SSH public key attached to a credential.
type SSHKey struct {
	// AuthorizedKey is the key as one authorized_keys line, without
	// options or comment: "ssh-ed25519 AAAA...".
	AuthorizedKey string
	// Fingerprint is its SHA256 fingerprint, as ssh-keygen -l prints it.
	Fingerprint string
}

// sshKeyTypes are the key types accepted; RSA also needs minRSABits.
var sshKeyTypes = map[string]bool{
	ssh.KeyAlgoED25519: true, ssh.KeyAlgoSKED25519: true,
	ssh.KeyAlgoECDSA256: true, ssh.KeyAlgoECDSA384: true, ssh.KeyAlgoECDSA521: true, ssh.KeyAlgoSKECDSA256: true,
	ssh.KeyAlgoRSA: true,
}

// ParseSSHKey reads one public key in authorized_keys form (the line of a
// .pub file: type, base64, optional comment). Options, certificates, DSA
// keys, RSA keys under 2048 bits and more than one key are refused with
// an error wrapping ErrSSHKey.
func ParseSSHKey(line string) (SSHKey, error) {
	line = strings.TrimSpace(line)
	if line == "" {
		return SSHKey{}, sshKeyError("it is empty: paste the one line of a .pub file")
	}
	if len(line) > maxSSHKeyLen {
		return SSHKey{}, sshKeyError("it is too long for a public key")
	}
	if strings.HasPrefix(line, "-----BEGIN") || strings.Contains(line, "PRIVATE KEY") {
		return SSHKey{}, sshKeyError("this looks like a private key: give the public key (the .pub file), and keep the private key to yourself")
	}
	if strings.ContainsAny(line, "\r\n") {
		return SSHKey{}, sshKeyError("give exactly one key, on one line")
	}
	key, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	switch {
	case err != nil:
		return SSHKey{}, sshKeyError(`it is not an OpenSSH public key line like "ssh-ed25519 AAAA... comment"`)
	case len(options) > 0:
		return SSHKey{}, sshKeyError("authorized_keys options are not supported: give the key alone")
	case len(bytes.TrimSpace(rest)) > 0:
		return SSHKey{}, sshKeyError("give exactly one key")
	}
	if _, ok := key.(*ssh.Certificate); ok {
		return SSHKey{}, sshKeyError("certificates are not supported: give the plain public key")
	}
	if !sshKeyTypes[key.Type()] {
		return SSHKey{}, sshKeyError("keys of type " + key.Type() + " are not accepted: use ed25519, ECDSA or RSA of 2048 bits or more")
	}
	if bits, ok := rsaBits(key); ok && bits < minRSABits {
		return SSHKey{}, sshKeyError("RSA keys need at least 2048 bits")
	}
	return SSHKey{
		AuthorizedKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))),
		Fingerprint:   ssh.FingerprintSHA256(key),
	}, nil
}

func sshKeyError(why string) error { return fmt.Errorf("%w: %s", ErrSSHKey, why) }

// rsaBits is the size of an RSA key; ok is false for other types.
func rsaBits(key ssh.PublicKey) (int, bool) {
	ck, ok := key.(ssh.CryptoPublicKey)
	if !ok {
		return 0, false
	}
	rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
	if !ok {
		return 0, false
	}
	return rk.N.BitLen(), true
}

// sameKey reports whether the stored authorized_keys line names key.
func sameKey(stored string, key ssh.PublicKey) bool {
	if stored == "" || key == nil {
		return false
	}
	want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(stored))
	return err == nil && bytes.Equal(want.Marshal(), key.Marshal())
}
