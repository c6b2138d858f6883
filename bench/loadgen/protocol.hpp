// What the load generator needs from a server protocol: requests drawn from a mix, and a
// parser that knows what each request's reply must be. One instance per generator thread.
#ifndef ATLAS_LOADGEN_PROTOCOL_HPP
#define ATLAS_LOADGEN_PROTOCOL_HPP

#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace atlas::loadgen
{

// One request: its bytes on the wire and what the parser needs to check its reply.
struct Request {
	std::string bytes;
	unsigned kind = 0; // index into Protocol::kinds()
	std::uint64_t first_key = 0;
	unsigned keys = 1;
};

enum class ReplyStatus {
	incomplete, // more bytes needed
	ok,         // the reply is complete and right
	wrong,      // complete, well framed, but not what the request must get (`why` says)
	broken,     // the stream cannot be parsed any further: the connection must be dropped
};

class Protocol
{
public:
	virtual ~Protocol() = default;
	// Names of the request kinds, for per-kind statistics.
	virtual std::vector<std::string> kinds() const = 0;
	// The next request of the mix.
	virtual void next(std::mt19937_64 &rng, Request &out) = 0;
	// Requests that put the server into the state the mix's replies are checked against
	// (every key stored), sent before the run; `index` counts from 0, false when done.
	virtual bool setup(std::size_t index, Request &out) = 0;
	// Parses the reply to `req` at the start of `in`. For ok and wrong, `consumed` is its
	// length; for wrong and broken, `why` says what was wrong.
	virtual ReplyStatus parse(const Request &req, std::string_view in, std::size_t &consumed,
	                          std::string &why) = 0;
};

} // namespace atlas::loadgen

#endif
