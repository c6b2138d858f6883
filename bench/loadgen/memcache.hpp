// memcached's text protocol for the load generator: a key space whose values are derived from
// the keys (so every reply can be checked), single gets, sets of the same values, and long
// multi-key gets (the requests that keep a worker thread busy when a barrier is called).
#ifndef ATLAS_LOADGEN_MEMCACHE_HPP
#define ATLAS_LOADGEN_MEMCACHE_HPP

#include "protocol.hpp"

namespace atlas::loadgen
{

struct MemcacheMix {
	std::uint64_t keys = 10000;   // key space: k00000000 ...
	std::size_t value_size = 100; // bytes per value
	double set_fraction = 0.09;   // of all requests
	double long_fraction = 0.01;  // multi-key gets
	unsigned long_keys = 100;     // keys per multi-key get
};

class Memcache final : public Protocol
{
public:
	explicit Memcache(const MemcacheMix &mix);
	std::vector<std::string> kinds() const override;
	void next(std::mt19937_64 &rng, Request &out) override;
	bool setup(std::size_t index, Request &out) override;
	ReplyStatus parse(const Request &req, std::string_view in, std::size_t &consumed,
	                  std::string &why) override;

	enum Kind : unsigned { get = 0, set = 1, multi_get = 2 };
	// The key's name and the value every reply must carry for it.
	static std::string key_name(std::uint64_t key);
	std::string value_of(std::uint64_t key) const;

private:
	void make_get(Request &out, std::uint64_t first, unsigned count, Kind kind) const;
	void make_set(Request &out, std::uint64_t key) const;
	ReplyStatus parse_get(const Request &req, std::string_view in, std::size_t &consumed,
	                      std::string &why) const;

	MemcacheMix mix_;
};

} // namespace atlas::loadgen

#endif
