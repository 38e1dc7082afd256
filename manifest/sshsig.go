package manifest

import (
	"crypto/rand"
	"crypto/sha512"
	"encoding/pem"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// SSHSIG (OpenSSH's PROTOCOL.sshsig): a signature that `ssh-keygen -Y
// verify` checks, made with the manifest key. What is signed is not the
// manifest but a blob naming the namespace and the manifest's SHA-512, so
// a signature made for one namespace is worth nothing in another.
const (
	sshsigVersion = 1
	sshsigHash    = "sha512"
	sshsigArmor   = "SSH SIGNATURE"
)

// sshsigMagic opens both the signature and the signed data; it is a
// preamble of six bytes, not an SSH string.
var sshsigMagic = [6]byte{'S', 'S', 'H', 'S', 'I', 'G'}

// NamespacePrefix starts the SSHSIG namespace of every case's manifest;
// the allowed_signers line limits the key to namespaces that start so.
const NamespacePrefix = "casedrop-case:"

// Principal is the signer's name in the allowed_signers line, the one
// `ssh-keygen -Y verify -I` names.
const Principal = "casedrop"

// Namespace is the SSHSIG namespace of the manifests of caseID: a
// signature made for one case does not verify as another case's.
func Namespace(caseID string) string { return NamespacePrefix + caseID }

// SSHSignature returns the armored SSHSIG signature ("-----BEGIN SSH
// SIGNATURE-----") of message in namespace.
func (s *Signer) SSHSignature(namespace string, message []byte) ([]byte, error) {
	sig, err := s.ssh.Sign(rand.Reader, sshSignedData(namespace, message))
	if err != nil {
		return nil, fmt.Errorf("manifest: SSH signature: %w", err)
	}
	blob := ssh.Marshal(struct {
		Magic     [6]byte
		Version   uint32
		PublicKey []byte
		Namespace string
		Reserved  string
		HashAlg   string
		Signature []byte
	}{
		Magic:     sshsigMagic,
		Version:   sshsigVersion,
		PublicKey: s.ssh.PublicKey().Marshal(),
		Namespace: namespace,
		HashAlg:   sshsigHash,
		Signature: ssh.Marshal(sig),
	})
	return pem.EncodeToMemory(&pem.Block{Type: sshsigArmor, Bytes: blob}), nil
}

// sshSignedData is what an SSHSIG signature of message in namespace signs.
func sshSignedData(namespace string, message []byte) []byte {
	h := sha512.Sum512(message)
	data := ssh.Marshal(struct {
		Magic     [6]byte
		Namespace string
		Reserved  string
		HashAlg   string
		Hash      []byte
	}{Magic: sshsigMagic, Namespace: namespace, HashAlg: sshsigHash, Hash: h[:]})
	return data
}

// AllowedSigners returns the line of an OpenSSH allowed_signers file that
// trusts the manifest key as Principal, for the cases' namespaces only.
func (s *Signer) AllowedSigners() []byte {
	// MarshalAuthorizedKey ends with the newline the line needs.
	return fmt.Appendf(nil, "%s namespaces=%q %s", Principal, NamespacePrefix+"*", ssh.MarshalAuthorizedKey(s.ssh.PublicKey()))
}
