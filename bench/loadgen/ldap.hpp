// LDAP (RFC 4511) for the load generator, BER encoded and decoded here (no LDAP library): a
// directory whose entries are derived from their numbers (so every reply can be checked),
// equality searches on an indexed attribute, and long substring searches that test every entry
// (the requests that keep a worker thread busy when a barrier is called); every connection
// first binds as one of the entries (simple bind), as a client does once per connection: a bind
// amid outstanding operations makes slapd abandon them, unanswered (RFC 4511, 4.2.1). slapd
// answers a connection's operations in any order, so replies are matched by message id
// (Protocol::tagged()).
#ifndef ATLAS_LOADGEN_LDAP_HPP
#define ATLAS_LOADGEN_LDAP_HPP

#include "protocol.hpp"

#include <array>

namespace atlas::loadgen
{

struct LdapMix {
	std::uint64_t entries = 5000; // uid=u00000000,ou=people,<suffix> ...
	std::string suffix = "dc=atlas,dc=test";
	double long_fraction = 0.01;  // substring searches over every entry
	std::uint64_t long_max = 100; // their patterns return 1 to long_max entries
};

class Ldap final : public Protocol
{
public:
	explicit Ldap(const LdapMix &mix);
	std::vector<std::string> kinds() const override;
	void next(std::mt19937_64 &rng, Request &out) override;
	bool setup(std::size_t index, Request &out) override;
	ReplyStatus parse(const Request &req, std::string_view in, std::size_t &consumed,
	                  std::string &why) override;
	bool tagged() const override
	{
		return true;
	}
	ReplyStatus frame(std::string_view in, std::size_t &length, std::uint64_t &tag,
	                  std::string &why) override;
	ReplyStatus feed(Request &req, std::string_view message, std::string &why) override;
	bool opening(std::uint64_t connection, Request &out) override;

	enum Kind : unsigned { search = 0, long_search = 1, bind = 2 };

	// The directory: what slapadd loads (the suffix, ou=people, the entries) and what every
	// reply is checked against.
	std::string ldif() const;
	std::string base() const; // ou=people,<suffix>
	std::string dn(std::uint64_t entry) const;
	static std::string uid(std::uint64_t entry);      // u00000042
	static std::string cn(std::uint64_t entry);       // User 00000042
	static std::string password(std::uint64_t entry); // p00000042
	// How many entries a long search for the 3-digit pattern returns.
	std::uint64_t substring_count(unsigned pattern) const;
	// The patterns the long searches use: those that return 1 to long_max entries (slapd
	// answers sizeLimitExceeded above its sizelimit, 500 by default).
	const std::vector<unsigned> &long_patterns() const
	{
		return long_patterns_;
	}

	// The requests, as the tests check them byte for byte.
	static std::string bind_request(std::uint32_t id, std::string_view dn,
	                                std::string_view password);
	// Subtree search under `base`, no size or time limit, returning attribute `attr`.
	static std::string search_request(std::uint32_t id, std::string_view base,
	                                  std::string_view filter, std::string_view attr);
	// Filters: (&(objectClass=<oc>)(<attr>=<value>)) and (<attr>=*<any>*).
	static std::string and_equality_filter(std::string_view oc, std::string_view attr,
	                                       std::string_view value);
	static std::string substring_filter(std::string_view attr, std::string_view any);

private:
	void make(Request &out, Kind kind, std::uint64_t key);
	ReplyStatus check_entry(Request &req, std::string_view op) const;

	LdapMix mix_;
	std::uint32_t next_id_ = 1;
	std::array<std::uint32_t, 1000> substring_counts_{};
	std::vector<unsigned> long_patterns_;
};

} // namespace atlas::loadgen

#endif
