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
	// Protocols whose replies may come out of request order (Protocol::tagged()): the tag
	// the reply carries (LDAP's message id), and what the reply's messages so far showed.
	std::uint64_t tag = 0;
	std::uint64_t progress = 0;
	std::string problem; // the first thing wrong in the reply so far
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
	// A request sent first on every connection the engine opens (`connection` counts them),
	// e.g. LDAP's bind: its reply is checked (a wrong one counts as wrong) but it is not part
	// of the schedule or the latencies. False: none.
	virtual bool opening(std::uint64_t /*connection*/, Request & /*out*/)
	{
		return false;
	}
	// Requests that put the server into the state the mix's replies are checked against
	// (every key stored), sent before the run; `index` counts from 0, false when done.
	virtual bool setup(std::size_t index, Request &out) = 0;
	// Parses the reply to `req` at the start of `in`. For ok and wrong, `consumed` is its
	// length; for wrong and broken, `why` says what was wrong.
	virtual ReplyStatus parse(const Request &req, std::string_view in, std::size_t &consumed,
	                          std::string &why) = 0;

	// A server that answers a connection's requests in any order (slapd runs a connection's
	// operations on several threads at once) tags each reply message with its request, and a
	// reply may be several messages interleaved with other replies' (an LDAP search's
	// entries, then its result). Such a protocol returns true here and implements the two
	// calls below; the engine then matches each message to its request by tag, and `parse`
	// is only used where replies are in order (the setup).
	virtual bool tagged() const
	{
		return false;
	}
	// One complete message at the start of `in`: its length and tag. incomplete (more bytes
	// needed), ok, or broken (`why`).
	virtual ReplyStatus frame(std::string_view /*in*/, std::size_t & /*length*/,
	                          std::uint64_t & /*tag*/, std::string &why)
	{
		why = "this protocol has no tagged replies";
		return ReplyStatus::broken;
	}
	// One message of the reply to `req` (state kept in `req.progress`, `req.problem`):
	// incomplete when the reply goes on, ok or wrong (`why`) when it is complete, broken when
	// the message cannot belong to it.
	virtual ReplyStatus feed(Request & /*req*/, std::string_view /*message*/, std::string &why)
	{
		why = "this protocol has no tagged replies";
		return ReplyStatus::broken;
	}
};

} // namespace atlas::loadgen

#endif
