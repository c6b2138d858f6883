// atlas/control: signed patches (docs/live-patching.md, "Control socket").
//
// With ATLAS_TRUSTED_KEYS set, the control server loads a patch only if its detached Ed25519
// signature (<patch>.sig, the 64 raw bytes `openssl pkeyutl -sign -rawin` writes) verifies
// against one of the trusted public keys (PEM, as `openssl pkey -pubout` writes). The
// cryptography is OpenSSL's (EVP, Ed25519).
#ifndef ATLAS_CONTROL_SIGNATURE_HPP
#define ATLAS_CONTROL_SIGNATURE_HPP

#include "control.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace atlas::control
{

class TrustedKeys
{
public:
	// Every Ed25519 public key in `path`: a PEM file (one or more keys) or a directory whose
	// *.pub and *.pem files are such files. Null with `error` naming the bad file if any file
	// cannot be read or parsed, holds a key that is not Ed25519, is writable by others than
	// its owner (or belongs to neither root nor this uid), or if no key is found.
	static Expected<std::shared_ptr<const TrustedKeys>> load(const std::string &path) noexcept;
	~TrustedKeys();
	TrustedKeys(const TrustedKeys &) = delete;
	TrustedKeys &operator=(const TrustedKeys &) = delete;

	// True if `signature` is a valid signature of `data` by one of the keys; `key` then names
	// it (file and index).
	bool verify(std::string_view data, std::string_view signature,
	            std::string &key) const noexcept;
	std::size_t size() const noexcept
	{
		return keys_.size();
	}
	const std::string &source() const noexcept
	{
		return source_;
	}

	struct Key;

private:
	TrustedKeys() = default;
	std::string source_;
	std::vector<std::unique_ptr<Key>> keys_;
};

// A loader that reads the patch once, checks <patch>.sig against `keys`, and hands `inner`
// exactly the bytes it verified (a sealed memfd, as /proc/self/fd/N), so a file changed after
// the check is never what is loaded.
Loader signature_checking_loader(std::shared_ptr<const TrustedKeys> keys, Loader inner);

// Tooling (atlas keygen, atlas sign). Writes <name>.key (private, mode 0600, PKCS#8 PEM) and
// <name>.pub (public, PEM); refuses to overwrite either.
Expected<void> generate_key(const std::string &name) noexcept;
// Writes <file>.sig: the Ed25519 signature of the file's bytes with the private key in
// `key_path`.
Expected<void> sign_file(const std::string &key_path, const std::string &file) noexcept;

} // namespace atlas::control

#endif
