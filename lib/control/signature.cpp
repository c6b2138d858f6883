// Signed patches: trusted keys, verification, signing (signature.hpp). OpenSSL's EVP Ed25519.
#include "signature.hpp"

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

std::string errno_text(int err)
{
	const char *desc = strerrordesc_np(err);
	const char *name = strerrorname_np(err);
	return fmt::format("{} ({})", desc ? desc : "unknown error", name ? name : "?");
}

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
bool read_file(const std::string &path, std::string &out, std::size_t limit, std::string &error,
               struct stat *st_out = nullptr)
{
	int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		error = fmt::format("cannot open {}: {}", path, errno_text(errno));
		return false;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		error = fmt::format("{} is not a regular file", path);
		::close(fd);
		return false;
	}
	if (st_out)
		*st_out = st;
	out.clear();
	char buf[65536];
	for (;;) {
		ssize_t n = ::read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error = fmt::format("cannot read {}: {}", path, errno_text(errno));
			::close(fd);
			return false;
		}
		if (n == 0)
			break;
		if (out.size() + static_cast<std::size_t>(n) > limit) {
			error = fmt::format("{} is larger than {} bytes", path, limit);
			::close(fd);
			return false;
		}
		out.append(buf, static_cast<std::size_t>(n));
	}
	::close(fd);
	return true;
}

bool write_new_file(const std::string &path, std::string_view data, mode_t mode, bool exclusive,
                    std::string &error)
{
	int fd = ::open(path.c_str(),
	                O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC), mode);
	if (fd < 0) {
		error = fmt::format("cannot create {}: {}{}", path, errno_text(errno),
		                    errno == EEXIST ? "; remove it or choose another name" : "");
		return false;
	}
	while (!data.empty()) {
		ssize_t n = ::write(fd, data.data(), data.size());
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			error = fmt::format("cannot write {}: {}", path, errno_text(errno));
			::close(fd);
			return false;
		}
		data.remove_prefix(static_cast<std::size_t>(n));
	}
	if (::close(fd) != 0) {
		error = fmt::format("cannot write {}: {}", path, errno_text(errno));
		return false;
	}
	return true;
}

// A trusted-key file or directory must not be replaceable by someone else.
bool check_owner(const std::string &path, const struct stat &st, std::string &error)
{
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		error = fmt::format("{} belongs to uid {}, neither root nor this process's uid {}: "
		                    "whoever owns it decides which patches load; chown it",
		                    path, st.st_uid, geteuid());
		return false;
	}
	if (st.st_mode & 022) {
		error = fmt::format("{} is writable by group or others (mode {:o}): anyone who can "
		                    "write it decides which patches load; chmod go-w it",
		                    path, st.st_mode & 07777);
		return false;
	}
	return true;
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

std::shared_ptr<const TrustedKeys> TrustedKeys::load(const std::string &path,
                                                     std::string &error) noexcept
{
	try {
		init_openssl();
		std::shared_ptr<TrustedKeys> keys(new TrustedKeys());
		keys->source_ = path;
		struct stat st;
		if (path.empty() || stat(path.c_str(), &st) != 0) {
			error = fmt::format("trusted keys {}: {}", path.empty() ? "\"\"" : path,
			                    path.empty() ? "empty path" : errno_text(errno));
			return nullptr;
		}
		std::vector<std::string> files;
		if (S_ISDIR(st.st_mode)) {
			if (!check_owner(path, st, error))
				return nullptr;
			DIR *dir = opendir(path.c_str());
			if (!dir) {
				error = fmt::format("cannot list {}: {}", path, errno_text(errno));
				return nullptr;
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
			std::string text;
			struct stat fst;
			if (!read_file(file, text, 1 << 20, error, &fst) ||
			    !check_owner(file, fst, error))
				return nullptr;
			if (text.find("PRIVATE KEY-----") != std::string::npos) {
				error =
				    fmt::format("{} holds a private key: trust the public key "
				                "(the .pub file atlas keygen writes), and keep the "
				                "private one away from the server",
				                file);
				return nullptr;
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
					error =
					    fmt::format("{}: public key {} cannot be parsed ({})",
					                file, in_file, ssl_error());
					return nullptr;
				}
				auto key = std::make_unique<Key>();
				key->pkey = pkey;
				key->name = fmt::format("{}#{}", file, in_file);
				if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
					error =
					    fmt::format("{}: key {} is not an Ed25519 key; make "
					                "keys with atlas keygen",
					                file, in_file);
					return nullptr;
				}
				keys->keys_.push_back(std::move(key));
				pos += begin.size();
			}
			if (in_file == 0) {
				error = fmt::format("{} holds no PEM public key (-----BEGIN PUBLIC "
				                    "KEY-----); make one with atlas keygen",
				                    file);
				return nullptr;
			}
		}
		if (keys->keys_.empty()) {
			error =
			    fmt::format("{} holds no *.pub or *.pem key file; make one with atlas "
			                "keygen",
			                path);
			return nullptr;
		}
		return keys;
	} catch (const std::exception &e) {
		error = fmt::format("loading trusted keys from {}: {}", path, e.what());
		return nullptr;
	}
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
	return [keys = std::move(keys), inner = std::move(inner)](const std::string &path) {
		LoadResult result;
		std::string bytes, signature, error;
		const std::string sig_path = path + ".sig";
		const std::string need =
		    fmt::format("this process loads only patches signed by a key in "
		                "ATLAS_TRUSTED_KEYS={}",
		                keys->source());
		if (!read_file(path, bytes, max_patch_bytes, error)) {
			result.error = error;
			return result;
		}
		if (!read_file(sig_path, signature, 4096, error)) {
			result.error = fmt::format("{}, and its signature is missing: {}; sign it "
			                           "with `atlas sign KEY {}`",
			                           need, error, path);
			return result;
		}
		std::string key;
		if (!keys->verify(bytes, signature, key)) {
			result.error = fmt::format(
			    "{}, and {} does not verify against any of its {} key(s): the patch "
			    "was changed after it was signed, or signed by a key not trusted here; "
			    "nothing was loaded",
			    need, sig_path, keys->size());
			return result;
		}
		// Exactly the verified bytes, in a file nobody can change any more.
		int fd = memfd_create("atlas-signed-patch", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0) {
			result.error = fmt::format("memfd_create failed: {}", errno_text(errno));
			return result;
		}
		std::string_view rest(bytes);
		while (!rest.empty()) {
			ssize_t n = ::write(fd, rest.data(), rest.size());
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				result.error = fmt::format("writing the verified patch to a memfd "
				                           "failed: {}",
				                           errno_text(errno));
				::close(fd);
				return result;
			}
			rest.remove_prefix(static_cast<std::size_t>(n));
		}
		if (fcntl(fd, F_ADD_SEALS,
		          F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
			result.error =
			    fmt::format("sealing the verified patch failed: {}", errno_text(errno));
			::close(fd);
			return result;
		}
		try {
			result = inner(fmt::format("/proc/self/fd/{}", fd));
		} catch (...) {
			::close(fd);
			throw;
		}
		::close(fd);
		return result;
	};
}

bool generate_key(const std::string &name, std::string &error) noexcept
{
	try {
		init_openssl();
		EVP_PKEY *key = nullptr;
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
		if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &key) != 1) {
			error = fmt::format("generating an Ed25519 key failed: {}", ssl_error());
			EVP_PKEY_CTX_free(ctx);
			return false;
		}
		EVP_PKEY_CTX_free(ctx);
		const std::string priv = pem_of(key, true), pub = pem_of(key, false);
		EVP_PKEY_free(key);
		if (priv.empty() || pub.empty()) {
			error = fmt::format("writing the key as PEM failed: {}", ssl_error());
			return false;
		}
		if (!write_new_file(name + ".key", priv, 0600, true, error))
			return false;
		if (!write_new_file(name + ".pub", pub, 0644, true, error)) {
			::unlink((name + ".key").c_str());
			return false;
		}
		return true;
	} catch (const std::exception &e) {
		error = e.what();
		return false;
	}
}

bool sign_file(const std::string &key_path, const std::string &file, std::string &error) noexcept
{
	try {
		init_openssl();
		std::string key_text, bytes;
		if (!read_file(key_path, key_text, 1 << 20, error) ||
		    !read_file(file, bytes, max_patch_bytes, error))
			return false;
		BIO *bio = BIO_new_mem_buf(key_text.data(), static_cast<int>(key_text.size()));
		EVP_PKEY *key =
		    bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
		BIO_free(bio);
		if (!key) {
			error = fmt::format("{} holds no readable private key ({}); make one with "
			                    "atlas keygen",
			                    key_path, ssl_error());
			return false;
		}
		if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
			EVP_PKEY_free(key);
			error = fmt::format("{} is not an Ed25519 key; make one with atlas keygen",
			                    key_path);
			return false;
		}
		unsigned char sig[signature_bytes];
		std::size_t sig_len = sizeof(sig);
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		bool ok = ctx && EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key) == 1 &&
		          EVP_DigestSign(ctx, sig, &sig_len,
		                         reinterpret_cast<const unsigned char *>(bytes.data()),
		                         bytes.size()) == 1;
		EVP_MD_CTX_free(ctx);
		EVP_PKEY_free(key);
		if (!ok || sig_len != signature_bytes) {
			error = fmt::format("signing {} failed: {}", file, ssl_error());
			return false;
		}
		return write_new_file(file + ".sig",
		                      std::string_view(reinterpret_cast<char *>(sig), sig_len),
		                      0644, false, error);
	} catch (const std::exception &e) {
		error = e.what();
		return false;
	}
}

} // namespace atlas::control
