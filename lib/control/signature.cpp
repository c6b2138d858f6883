// Signed patches: trusted keys, verification, signing (signature.hpp). OpenSSL's EVP Ed25519.
#include "signature.hpp"

#include "atlas/error_util.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace atlas::control
{

struct TrustedKeys::Key {
	std::string name;
	EVP_PKEY *pkey = nullptr;
	~Key()
	{
		EVP_PKEY_free(pkey);
	}
};

namespace
{

constexpr std::size_t max_patch_bytes = std::size_t(1) << 30;
constexpr std::size_t signature_bytes = 64; // Ed25519

using detail::errno_text;
using detail::system_error;

// OpenSSL's last error, for messages (and clears its queue).
std::string ssl_error()
{
	unsigned long e = ERR_get_error();
	ERR_clear_error();
	if (e == 0)
		return "no OpenSSL error recorded";
	char buf[256];
	ERR_error_string_n(e, buf, sizeof(buf));
	return buf;
}

void init_openssl()
{
	// No atexit handler in the patched process: the server may verify while it exits.
	OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr);
}

// Reads a whole regular file, at most `limit` bytes, through one descriptor.
Expected<std::string> read_file(const std::string &path, std::size_t limit,
                                struct stat *st_out = nullptr)
{
	int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		const int e = errno;
		return system_error(e, fmt::format("cannot open {}: {}", path, errno_text(e)),
		                    Errc::io);
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		::close(fd);
		return make_error(Errc::io, fmt::format("{} is not a regular file", path));
	}
	if (st_out)
		*st_out = st;
	std::string out;
	char buf[65536];
	for (;;) {
		ssize_t n = ::read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			const int e = errno;
			::close(fd);
			return system_error(
			    e, fmt::format("cannot read {}: {}", path, errno_text(e)), Errc::io);
		}
		if (n == 0)
			break;
		if (out.size() + static_cast<std::size_t>(n) > limit) {
			::close(fd);
			return make_error(Errc::io,
			                  fmt::format("{} is larger than {} bytes", path, limit));
		}
		out.append(buf, static_cast<std::size_t>(n));
	}
	::close(fd);
	return out;
}

Expected<void> write_new_file(const std::string &path, std::string_view data, mode_t mode,
                              bool exclusive)
{
	int fd = ::open(path.c_str(),
	                O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC), mode);
	if (fd < 0) {
		const int e = errno;
		return system_error(
		    e,
		    fmt::format("cannot create {}: {}{}", path, errno_text(e),
		                e == EEXIST ? "; remove it or choose another name" : ""),
		    Errc::io);
	}
	while (!data.empty()) {
		ssize_t n = ::write(fd, data.data(), data.size());
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			const int e = errno;
			::close(fd);
			return system_error(
			    e, fmt::format("cannot write {}: {}", path, errno_text(e)), Errc::io);
		}
		data.remove_prefix(static_cast<std::size_t>(n));
	}
	if (::close(fd) != 0) {
		const int e = errno;
		return system_error(e, fmt::format("cannot write {}: {}", path, errno_text(e)),
		                    Errc::io);
	}
	return {};
}

// A trusted-key file or directory must not be replaceable by someone else.
Expected<void> check_owner(const std::string &path, const struct stat &st)
{
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return make_error(
		    Errc::not_permitted,
		    fmt::format("{} belongs to uid {}, neither root nor this process's "
		                "uid {}: whoever owns it decides which patches load; "
		                "chown it",
		                path, st.st_uid, geteuid()));
	if (st.st_mode & 022)
		return make_error(
		    Errc::not_permitted,
		    fmt::format("{} is writable by group or others (mode {:o}): anyone "
		                "who can write it decides which patches load; chmod "
		                "go-w it",
		                path, st.st_mode & 07777));
	return {};
}

std::string pem_of(EVP_PKEY *key, bool private_key)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return {};
	int ok = private_key
	             ? PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr)
	             : PEM_write_bio_PUBKEY(bio, key);
	std::string out;
	if (ok == 1) {
		char *data = nullptr;
		long n = BIO_get_mem_data(bio, &data);
		if (n > 0)
			out.assign(data, static_cast<std::size_t>(n));
	}
	BIO_free(bio);
	return out;
}

} // namespace

Expected<std::shared_ptr<const TrustedKeys>> TrustedKeys::load(const std::string &path) noexcept
{
	using Keys = std::shared_ptr<const TrustedKeys>;
	return detail::guard([&]() -> Expected<Keys> {
		init_openssl();
		std::shared_ptr<TrustedKeys> keys(new TrustedKeys());
		keys->source_ = path;
		struct stat st;
		if (path.empty() || stat(path.c_str(), &st) != 0) {
			const int e = path.empty() ? 0 : errno;
			return system_error(
			    e,
			    fmt::format("trusted keys {}: {}", path.empty() ? "\"\"" : path,
			                path.empty() ? "empty path" : errno_text(e)),
			    Errc::io);
		}
		std::vector<std::string> files;
		if (S_ISDIR(st.st_mode)) {
			if (Expected<void> owned = check_owner(path, st); !owned)
				return owned.error();
			DIR *dir = opendir(path.c_str());
			if (!dir) {
				const int e = errno;
				return system_error(
				    e, fmt::format("cannot list {}: {}", path, errno_text(e)),
				    Errc::io);
			}
			while (struct dirent *e = readdir(dir)) {
				std::string_view name(e->d_name);
				if (!name.starts_with('.') &&
				    (name.ends_with(".pub") || name.ends_with(".pem")))
					files.push_back(fmt::format("{}/{}", path, name));
			}
			closedir(dir);
			std::sort(files.begin(), files.end());
		} else {
			files.push_back(path);
		}
		for (const auto &file : files) {
			struct stat fst;
			Expected<std::string> read = read_file(file, 1 << 20, &fst);
			if (!read)
				return read.error();
			if (Expected<void> owned = check_owner(file, fst); !owned)
				return owned.error();
			const std::string &text = *read;
			if (text.find("PRIVATE KEY-----") != std::string::npos) {
				return make_error(
				    Errc::not_permitted,
				    fmt::format("{} holds a private key: trust the public key "
				                "(the .pub file atlas keygen writes), and keep the "
				                "private one away from the server",
				                file));
			}
			static constexpr std::string_view begin = "-----BEGIN PUBLIC KEY-----";
			std::size_t pos = 0;
			int in_file = 0;
			while ((pos = text.find(begin, pos)) != std::string::npos) {
				std::string_view rest(text.data() + pos, text.size() - pos);
				BIO *bio =
				    BIO_new_mem_buf(rest.data(), static_cast<int>(rest.size()));
				EVP_PKEY *pkey =
				    bio ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr)
				        : nullptr;
				BIO_free(bio);
				in_file++;
				if (!pkey) {
					return make_error(
					    Errc::invalid_format,
					    fmt::format("{}: public key {} cannot be parsed ({})",
					                file, in_file, ssl_error()));
				}
				auto key = std::make_unique<Key>();
				key->pkey = pkey;
				key->name = fmt::format("{}#{}", file, in_file);
				if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
					return make_error(
					    Errc::unsupported,
					    fmt::format("{}: key {} is not an Ed25519 key; make "
					                "keys with atlas keygen",
					                file, in_file));
				}
				keys->keys_.push_back(std::move(key));
				pos += begin.size();
			}
			if (in_file == 0) {
				return make_error(
				    Errc::not_found,
				    fmt::format("{} holds no PEM public key (-----BEGIN "
				                "PUBLIC KEY-----); make one with atlas keygen",
				                file));
			}
		}
		if (keys->keys_.empty()) {
			return make_error(
			    Errc::not_found,
			    fmt::format("{} holds no *.pub or *.pem key file; make one "
			                "with atlas keygen",
			                path));
		}
		return Keys(std::move(keys));
	});
}

TrustedKeys::~TrustedKeys() = default;

bool TrustedKeys::verify(std::string_view data, std::string_view signature,
                         std::string &key) const noexcept
{
	if (signature.size() != signature_bytes)
		return false;
	for (const auto &k : keys_) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		if (!ctx)
			return false;
		bool ok =
		    EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, k->pkey) == 1 &&
		    EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char *>(signature.data()),
		                     signature.size(),
		                     reinterpret_cast<const unsigned char *>(data.data()),
		                     data.size()) == 1;
		EVP_MD_CTX_free(ctx);
		ERR_clear_error();
		if (ok) {
			try {
				key = k->name;
			} catch (...) {
			}
			return true;
		}
	}
	return false;
}

Loader signature_checking_loader(std::shared_ptr<const TrustedKeys> keys, Loader inner)
{
	return [keys = std::move(keys),
	        inner = std::move(inner)](const std::string &path) -> Loaded {
		const std::string sig_path = path + ".sig";
		const std::string need =
		    fmt::format("this process loads only patches signed by a key in "
		                "ATLAS_TRUSTED_KEYS={}",
		                keys->source());
		Expected<std::string> bytes = read_file(path, max_patch_bytes);
		if (!bytes)
			return bytes.error();
		Expected<std::string> signature = read_file(sig_path, 4096);
		if (!signature)
			return make_error(
			    Errc::not_permitted,
			    fmt::format("{}, and its signature is missing: {}; sign it "
			                "with `atlas sign KEY {}`",
			                need, signature.error().message, path),
			    signature.error().sys_errno);
		std::string key;
		if (!keys->verify(*bytes, *signature, key))
			return make_error(
			    Errc::not_permitted,
			    fmt::format(
			        "{}, and {} does not verify against any of its {} key(s): the "
			        "patch was changed after it was signed, or signed by a key not "
			        "trusted here; nothing was loaded",
			        need, sig_path, keys->size()));
		// Exactly the verified bytes, in a file nobody can change any more.
		int fd = memfd_create("atlas-signed-patch", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0) {
			const int e = errno;
			return system_error(e,
			                    fmt::format("memfd_create failed: {}", errno_text(e)));
		}
		struct Closer {
			int fd;
			~Closer()
			{
				::close(fd);
			}
		} closer{fd};
		std::string_view rest(*bytes);
		while (!rest.empty()) {
			ssize_t n = ::write(fd, rest.data(), rest.size());
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				const int e = errno;
				return system_error(
				    e, fmt::format("writing the verified patch to a memfd "
				                   "failed: {}",
				                   errno_text(e)));
			}
			rest.remove_prefix(static_cast<std::size_t>(n));
		}
		if (fcntl(fd, F_ADD_SEALS,
		          F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
			const int e = errno;
			return system_error(
			    e, fmt::format("sealing the verified patch failed: {}", errno_text(e)));
		}
		// The descriptor stays open (closer) until the inner loader returns or throws.
		return inner(fmt::format("/proc/self/fd/{}", fd));
	};
}

Expected<void> generate_key(const std::string &name) noexcept
{
	return detail::guard([&]() -> Expected<void> {
		init_openssl();
		EVP_PKEY *key = nullptr;
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
		if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &key) != 1) {
			EVP_PKEY_CTX_free(ctx);
			return make_error(Errc::internal, fmt::format("generating an Ed25519 key "
			                                              "failed: {}",
			                                              ssl_error()));
		}
		EVP_PKEY_CTX_free(ctx);
		const std::string priv = pem_of(key, true), pub = pem_of(key, false);
		EVP_PKEY_free(key);
		if (priv.empty() || pub.empty())
			return make_error(
			    Errc::internal,
			    fmt::format("writing the key as PEM failed: {}", ssl_error()));
		if (Expected<void> w = write_new_file(name + ".key", priv, 0600, true); !w)
			return w;
		if (Expected<void> w = write_new_file(name + ".pub", pub, 0644, true); !w) {
			::unlink((name + ".key").c_str());
			return w;
		}
		return {};
	});
}

Expected<void> sign_file(const std::string &key_path, const std::string &file) noexcept
{
	return detail::guard([&]() -> Expected<void> {
		init_openssl();
		Expected<std::string> key_text = read_file(key_path, 1 << 20);
		if (!key_text)
			return key_text.error();
		Expected<std::string> bytes = read_file(file, max_patch_bytes);
		if (!bytes)
			return bytes.error();
		BIO *bio = BIO_new_mem_buf(key_text->data(), static_cast<int>(key_text->size()));
		EVP_PKEY *key =
		    bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
		BIO_free(bio);
		if (!key)
			return make_error(
			    Errc::invalid_format,
			    fmt::format("{} holds no readable private key ({}); make one "
			                "with atlas keygen",
			                key_path, ssl_error()));
		if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
			EVP_PKEY_free(key);
			return make_error(
			    Errc::unsupported,
			    fmt::format("{} is not an Ed25519 key; make one with atlas "
			                "keygen",
			                key_path));
		}
		unsigned char sig[signature_bytes];
		std::size_t sig_len = sizeof(sig);
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		bool ok = ctx && EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key) == 1 &&
		          EVP_DigestSign(ctx, sig, &sig_len,
		                         reinterpret_cast<const unsigned char *>(bytes->data()),
		                         bytes->size()) == 1;
		EVP_MD_CTX_free(ctx);
		EVP_PKEY_free(key);
		if (!ok || sig_len != signature_bytes)
			return make_error(Errc::internal,
			                  fmt::format("signing {} failed: {}", file, ssl_error()));
		return write_new_file(file + ".sig",
		                      std::string_view(reinterpret_cast<char *>(sig), sig_len),
		                      0644, false);
	});
}

} // namespace atlas::control
