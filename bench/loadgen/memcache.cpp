// memcached text protocol for the load generator (see memcache.hpp).
#include "memcache.hpp"

#include <charconv>
#include <fmt/format.h>

namespace atlas::loadgen
{

namespace
{

// The reply lines memcached sends for an error, whatever the request.
bool is_error_line(std::string_view line)
{
	return line == "ERROR" || line.starts_with("CLIENT_ERROR") ||
	       line.starts_with("SERVER_ERROR");
}

std::string printable(std::string_view s)
{
	std::string out;
	for (char c : s.substr(0, 60))
		out += (c >= 32 && c < 127) ? c : '?';
	return s.size() > 60 ? out + "..." : out;
}

} // namespace

Memcache::Memcache(const MemcacheMix &mix) : mix_(mix)
{
	if (mix_.keys == 0)
		mix_.keys = 1;
	if (mix_.long_keys == 0)
		mix_.long_keys = 1;
}

std::vector<std::string> Memcache::kinds() const
{
	return {"get", "set", fmt::format("get x{}", mix_.long_keys)};
}

std::string Memcache::key_name(std::uint64_t key)
{
	return fmt::format("k{:08}", key);
}

std::string Memcache::value_of(std::uint64_t key) const
{
	// A pattern that differs between keys and along the value, so that a reply carrying
	// another key's value or a shifted one is caught.
	std::string v(mix_.value_size, 'a');
	for (std::size_t i = 0; i < v.size(); i++)
		v[i] = static_cast<char>('a' + (key * 7 + i * 13 + (i >> 5)) % 26);
	return v;
}

void Memcache::make_get(Request &out, std::uint64_t first, unsigned count, Kind kind) const
{
	out.kind = kind;
	out.first_key = first;
	out.keys = count;
	out.bytes = "get";
	for (unsigned i = 0; i < count; i++) {
		out.bytes += ' ';
		out.bytes += key_name((first + i) % mix_.keys);
	}
	out.bytes += "\r\n";
}

void Memcache::make_set(Request &out, std::uint64_t key) const
{
	out.kind = set;
	out.first_key = key;
	out.keys = 1;
	out.bytes =
	    fmt::format("set {} 0 0 {}\r\n{}\r\n", key_name(key), mix_.value_size, value_of(key));
}

void Memcache::next(std::mt19937_64 &rng, Request &out)
{
	const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
	const std::uint64_t key =
	    std::uniform_int_distribution<std::uint64_t>(0, mix_.keys - 1)(rng);
	if (u < mix_.long_fraction)
		make_get(out, key, mix_.long_keys, multi_get);
	else if (u < mix_.long_fraction + mix_.set_fraction)
		make_set(out, key);
	else
		make_get(out, key, 1, get);
}

bool Memcache::setup(std::size_t index, Request &out)
{
	if (index >= mix_.keys)
		return false;
	make_set(out, index);
	return true;
}

ReplyStatus Memcache::parse(const Request &req, std::string_view in, std::size_t &consumed,
                            std::string &why)
{
	if (req.kind != set)
		return parse_get(req, in, consumed, why);
	const auto eol = in.find("\r\n");
	if (eol == std::string_view::npos)
		return in.size() > 1024 ? (why = "no line end in 1 KiB", ReplyStatus::broken)
		                        : ReplyStatus::incomplete;
	consumed = eol + 2;
	const auto line = in.substr(0, eol);
	if (line == "STORED")
		return ReplyStatus::ok;
	why = fmt::format("set {}: \"{}\"", key_name(req.first_key), printable(line));
	return is_error_line(line) ? ReplyStatus::wrong : ReplyStatus::broken;
}

// A get's reply: a VALUE block for each key found, in request order, then END.
ReplyStatus Memcache::parse_get(const Request &req, std::string_view in, std::size_t &consumed,
                                std::string &why) const
{
	std::size_t pos = 0;
	unsigned next_key = 0; // index in the request of the first key not yet answered
	unsigned missing = 0;
	for (;;) {
		const auto eol = in.find("\r\n", pos);
		if (eol == std::string_view::npos)
			return in.size() - pos > 1024
			           ? (why = "no line end in 1 KiB", ReplyStatus::broken)
			           : ReplyStatus::incomplete;
		const auto line = in.substr(pos, eol - pos);
		if (line == "END") {
			consumed = eol + 2;
			missing += req.keys - next_key;
			if (missing == 0)
				return ReplyStatus::ok;
			why = fmt::format("get of {} key(s) from {}: {} not found", req.keys,
			                  key_name(req.first_key), missing);
			return ReplyStatus::wrong;
		}
		if (is_error_line(line)) {
			consumed = eol + 2;
			why =
			    fmt::format("get {}: \"{}\"", key_name(req.first_key), printable(line));
			return ReplyStatus::wrong;
		}
		// VALUE <key> <flags> <bytes>
		if (!line.starts_with("VALUE ")) {
			why = fmt::format("get {}: unexpected line \"{}\"", key_name(req.first_key),
			                  printable(line));
			return ReplyStatus::broken;
		}
		const auto rest = line.substr(6);
		const auto sp1 = rest.find(' ');
		const auto sp2 = sp1 == std::string_view::npos ? sp1 : rest.find(' ', sp1 + 1);
		std::size_t bytes = 0;
		if (sp2 == std::string_view::npos ||
		    std::from_chars(rest.data() + sp2 + 1, rest.data() + rest.size(), bytes).ec !=
		        std::errc()) {
			why = fmt::format("malformed VALUE line \"{}\"", printable(line));
			return ReplyStatus::broken;
		}
		const std::size_t data = eol + 2;
		if (in.size() < data + bytes + 2)
			return ReplyStatus::incomplete;
		if (in.substr(data + bytes, 2) != "\r\n") {
			why = fmt::format("VALUE of {} bytes not followed by a line end", bytes);
			return ReplyStatus::broken;
		}
		// The key must be one requested, after those already answered (a miss skips).
		const auto name = rest.substr(0, sp1);
		unsigned i = next_key;
		while (i < req.keys && key_name((req.first_key + i) % mix_.keys) != name)
			i++;
		if (i == req.keys) {
			why = fmt::format("get from {}: VALUE for a key not requested (or out of "
			                  "order): {}",
			                  key_name(req.first_key), printable(name));
			return ReplyStatus::broken;
		}
		missing += i - next_key;
		const std::uint64_t key = (req.first_key + i) % mix_.keys;
		if (in.substr(data, bytes) != value_of(key)) {
			// Framing is intact: skip to the end of the reply, then report.
			std::size_t end = in.find("END\r\n", data + bytes + 2);
			if (end == std::string_view::npos)
				return ReplyStatus::incomplete;
			consumed = end + 5;
			why = fmt::format("get {}: wrong value ({} bytes: \"{}\")", key_name(key),
			                  bytes, printable(in.substr(data, bytes)));
			return ReplyStatus::wrong;
		}
		next_key = i + 1;
		pos = data + bytes + 2;
	}
}

} // namespace atlas::loadgen
