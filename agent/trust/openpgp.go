package trust

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// keyring is a parsed OpenPGP public keyring.
type keyring struct {
	entities openpgp.EntityList
}

// parseKeyring reads every armored public key block in data (a file made
// by `gpg --export --armor`, or several such files put together).
func parseKeyring(data []byte) (*keyring, error) {
	var ring openpgp.EntityList
	rest := data
	for {
		i := bytes.Index(rest, []byte(pgpKeyBlock))
		if i < 0 {
			break
		}
		rest = rest[i:]
		block, err := armor.Decode(bytes.NewReader(rest))
		if err != nil {
			return nil, fmt.Errorf("OpenPGP armor: %w", err)
		}
		if block.Type != openpgp.PublicKeyType {
			return nil, fmt.Errorf("OpenPGP armor holds %q, want %q", block.Type, openpgp.PublicKeyType)
		}
		el, err := openpgp.ReadKeyRing(block.Body)
		if err != nil {
			return nil, fmt.Errorf("OpenPGP keyring: %w", err)
		}
		ring = append(ring, el...)
		rest = rest[len(pgpKeyBlock):]
	}
	if len(ring) == 0 {
		return nil, errors.New("no keys in the OpenPGP keyring")
	}
	return &keyring{entities: ring}, nil
}

// verifyOpenPGP gives git's verdict on an armored detached OpenPGP
// signature of payload. git 2.39 runs `gpg --verify` with the keyring and
// accepts only a GOODSIG status, whatever the owner trust (git's default
// gpg.minTrustLevel is "undefined"): every key in the keyring is trusted,
// and no web of trust is consulted. gpg judges expiry and revocation at
// the time of verification, not of signing, and so does this.
func (k *Keys) verifyOpenPGP(payload []byte, armored string) (Signer, Reason, string) {
	if k.ring == nil {
		// git runs gpg with a keyring holding none of these keys.
		return Signer{}, UnknownKey, fmt.Sprintf("an OpenPGP signature, but %s is an SSH allowed-signers file", k.name)
	}
	block, err := armor.Decode(strings.NewReader(armored))
	if err != nil {
		return Signer{}, BadSignature, fmt.Sprintf("malformed OpenPGP armor: %v", err)
	}
	body, err := io.ReadAll(block.Body)
	if err != nil {
		return Signer{}, BadSignature, fmt.Sprintf("malformed OpenPGP armor: %v", err)
	}
	// gpg reports each signature packet, and git refuses a commit with
	// more than one verdict.
	n, err := countSignatures(body)
	if err != nil {
		return Signer{}, BadSignature, fmt.Sprintf("malformed OpenPGP signature: %v", err)
	}
	if n != 1 {
		return Signer{}, BadSignature, fmt.Sprintf("%d OpenPGP signatures, want exactly one", n)
	}
	sig, entity, err := openpgp.VerifyDetachedSignature(k.ring.entities, bytes.NewReader(payload), bytes.NewReader(body), nil)
	if errors.Is(err, pgperrors.ErrSignatureExpired) && sig != nil && sig.CreationTime.After(time.Now()) {
		// go-crypto calls a signature made in the future expired; gpg
		// takes it. Judge it as of its own time instead: a key expired or
		// revoked now still is then.
		at := sig.CreationTime
		config := &packet.Config{Time: func() time.Time { return at }}
		sig, entity, err = openpgp.VerifyDetachedSignature(k.ring.entities, bytes.NewReader(payload), bytes.NewReader(body), config)
	}
	var issuer string
	if sig != nil && sig.IssuerFingerprint != nil {
		issuer = fmt.Sprintf("%X", sig.IssuerFingerprint)
	} else if sig != nil && sig.IssuerKeyId != nil {
		issuer = fmt.Sprintf("%016X", *sig.IssuerKeyId)
	}
	switch {
	case err == nil:
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return Signer{}, UnknownKey, fmt.Sprintf("OpenPGP signature by a key not in %s", k.name)
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return Signer{}, UnknownKey, fmt.Sprintf("OpenPGP key %s has expired", issuer)
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return Signer{}, UnknownKey, fmt.Sprintf("OpenPGP key %s is revoked", issuer)
	default:
		return Signer{}, BadSignature, fmt.Sprintf("OpenPGP signature does not verify: %v", err)
	}
	var name string
	if _, id := entity.PrimarySelfSignature(); id != nil {
		name = id.Name
	}
	return Signer{Principal: name, Fingerprint: issuer}, "", ""
}

// countSignatures counts the signature packets in a detached signature; any
// other packet is an error.
func countSignatures(body []byte) (int, error) {
	r := packet.NewReader(bytes.NewReader(body))
	n := 0
	for {
		p, err := r.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if _, ok := p.(*packet.Signature); !ok {
			return n, fmt.Errorf("%T packet in a detached signature", p)
		}
		n++
	}
}
