// LDAP for the load generator (see ldap.hpp). The encodings follow RFC 4511's ASN.1 (section
// 4 and appendix B) under BER's definite-length rules, the subset slapd sends and takes:
// LDAPMessage ::= SEQUENCE { messageID INTEGER, protocolOp CHOICE { ... } }.
#include "ldap.hpp"

#include <algorithm>
#include <cctype>
#include <fmt/format.h>
#include <set>

namespace atlas::loadgen
{

namespace
{

// BER identifier octets of the protocol elements used here (RFC 4511, appendix B).
constexpr unsigned char t_integer = 0x02, t_octets = 0x04, t_enumerated = 0x0a, t_boolean = 0x01,
                        t_sequence = 0x30, t_set = 0x31;
constexpr unsigned char t_bind_request = 0x60, t_bind_response = 0x61, t_search_request = 0x63,
                        t_search_entry = 0x64, t_search_done = 0x65, t_search_reference = 0x73;
constexpr unsigned char t_auth_simple = 0x80; // [0] OCTET STRING
constexpr unsigned char t_filter_and = 0xa0, t_filter_equality = 0xa3,
                        t_filter_substrings = 0xa4; // [0], [3], [4] constructed
constexpr unsigned char t_substring_any = 0x81;     // [1] primitive
constexpr std::size_t max_message = 64u << 20;      // larger: the stream is wrong

std::string length_octets(std::size_t n)
{
	if (n < 0x80)
		return std::string(1, static_cast<char>(n));
	std::string bytes;
	for (; n; n >>= 8)
		bytes.insert(bytes.begin(), static_cast<char>(n & 0xff));
	return static_cast<char>(0x80 | bytes.size()) + bytes;
}

std::string tlv(unsigned char tag, std::string_view content)
{
	return static_cast<char>(tag) + length_octets(content.size()) + std::string(content);
}

// A non-negative INTEGER (or ENUMERATED) in the fewest octets, two's complement.
std::string integer(unsigned char tag, std::uint64_t v)
{
	std::string bytes;
	do {
		bytes.insert(bytes.begin(), static_cast<char>(v & 0xff));
		v >>= 8;
	} while (v);
	if (static_cast<unsigned char>(bytes[0]) & 0x80)
		bytes.insert(bytes.begin(), '\0');
	return tlv(tag, bytes);
}

// The identifier and length at the start of `in`: 0 when complete (hdr: their octets, len:
// the content's), 1 when more octets are needed, -1 when not BER this code takes (indefinite
// length, multi-octet tags, lengths beyond max_message).
int header(std::string_view in, unsigned char &tag, std::size_t &hdr, std::size_t &len)
{
	if (in.size() < 2)
		return 1;
	tag = static_cast<unsigned char>(in[0]);
	if ((tag & 0x1f) == 0x1f)
		return -1;
	const auto first = static_cast<unsigned char>(in[1]);
	if (first < 0x80) {
		hdr = 2;
		len = first;
		return 0;
	}
	const std::size_t n = first & 0x7f;
	if (n == 0 || n > 4)
		return -1;
	if (in.size() < 2 + n)
		return 1;
	len = 0;
	for (std::size_t i = 0; i < n; i++)
		len = len << 8 | static_cast<unsigned char>(in[2 + i]);
	hdr = 2 + n;
	return len > max_message ? -1 : 0;
}

// Reads the elements of a complete BER encoding one after the other.
class Reader
{
public:
	explicit Reader(std::string_view s) : s_(s) {}
	bool done() const
	{
		return s_.empty();
	}
	// The next element's tag and content; false if malformed or truncated.
	bool next(unsigned char &tag, std::string_view &content)
	{
		std::size_t hdr = 0, len = 0;
		if (header(s_, tag, hdr, len) != 0 || s_.size() - hdr < len)
			return false;
		content = s_.substr(hdr, len);
		s_.remove_prefix(hdr + len);
		return true;
	}
	bool expect(unsigned char want, std::string_view &content)
	{
		unsigned char tag = 0;
		return next(tag, content) && tag == want;
	}
	bool integer(unsigned char want, std::int64_t &v)
	{
		std::string_view c;
		if (!expect(want, c) || c.empty() || c.size() > 8)
			return false;
		v = static_cast<signed char>(c[0]);
		for (std::size_t i = 1; i < c.size(); i++)
			v = v * 256 + static_cast<unsigned char>(c[i]);
		return true;
	}

private:
	std::string_view s_;
};

std::string printable(std::string_view s)
{
	std::string out;
	for (char c : s.substr(0, 80))
		out += (c >= 32 && c < 127) ? c : '?';
	return s.size() > 80 ? out + "..." : out;
}

bool iequals(std::string_view a, std::string_view b)
{
	return a.size() == b.size() &&
	       std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
		       return std::tolower(static_cast<unsigned char>(x)) ==
		              std::tolower(static_cast<unsigned char>(y));
	       });
}

// LDAPResult ::= SEQUENCE { resultCode ENUMERATED, matchedDN, diagnosticMessage, ... }
bool read_result(std::string_view content, std::int64_t &code, std::string &diagnostic)
{
	Reader r(content);
	std::string_view matched, message;
	if (!r.integer(t_enumerated, code) || !r.expect(t_octets, matched) ||
	    !r.expect(t_octets, message))
		return false;
	diagnostic = std::string(message);
	return true;
}

std::string pattern_text(std::uint64_t pattern)
{
	return fmt::format("{:03}", pattern % 1000);
}

} // namespace

Ldap::Ldap(const LdapMix &mix) : mix_(mix)
{
	if (mix_.entries == 0)
		mix_.entries = 1;
	for (std::uint64_t i = 0; i < mix_.entries; i++) {
		const std::string digits = fmt::format("{:08}", i);
		std::set<unsigned> seen;
		for (std::size_t at = 0; at + 3 <= digits.size(); at++)
			seen.insert(static_cast<unsigned>(std::stoul(digits.substr(at, 3))));
		for (unsigned p : seen)
			substring_counts_[p]++;
	}
	for (unsigned p = 0; p < substring_counts_.size(); p++)
		if (substring_counts_[p] >= 1 && substring_counts_[p] <= mix_.long_max)
			long_patterns_.push_back(p);
}

std::vector<std::string> Ldap::kinds() const
{
	return {"search", "search substr"};
}

std::string Ldap::base() const
{
	return "ou=people," + mix_.suffix;
}

std::string Ldap::uid(std::uint64_t entry)
{
	return fmt::format("u{:08}", entry);
}

std::string Ldap::cn(std::uint64_t entry)
{
	return fmt::format("User {:08}", entry);
}

std::string Ldap::password(std::uint64_t entry)
{
	return fmt::format("p{:08}", entry);
}

std::string Ldap::dn(std::uint64_t entry) const
{
	return "uid=" + uid(entry) + "," + base();
}

std::uint64_t Ldap::substring_count(unsigned pattern) const
{
	return substring_counts_[pattern % 1000];
}

std::string Ldap::ldif() const
{
	// The suffix's first RDN names the top entry (dc=atlas: a dcObject).
	const auto comma = mix_.suffix.find(',');
	const std::string first = mix_.suffix.substr(0, comma);
	const std::string dc = first.substr(first.find('=') + 1);
	std::string out = fmt::format("dn: {}\nobjectClass: dcObject\nobjectClass: organization\n"
	                              "dc: {}\no: {}\n\n",
	                              mix_.suffix, dc, dc);
	out += fmt::format("dn: {}\nobjectClass: organizationalUnit\nou: people\n\n", base());
	for (std::uint64_t i = 0; i < mix_.entries; i++)
		out +=
		    fmt::format("dn: {}\nobjectClass: person\nobjectClass: organizationalPerson\n"
		                "objectClass: inetOrgPerson\nuid: {}\ncn: {}\nsn: s{:08}\n"
		                "userPassword: {}\n\n",
		                dn(i), uid(i), cn(i), i, password(i));
	return out;
}

std::string Ldap::bind_request(std::uint32_t id, std::string_view dn, std::string_view password)
{
	// BindRequest ::= [APPLICATION 0] SEQUENCE { version INTEGER (1..127), name LDAPDN,
	//                 authentication AuthenticationChoice (simple [0] OCTET STRING) }
	const std::string op = tlv(t_bind_request, integer(t_integer, 3) + tlv(t_octets, dn) +
	                                               tlv(t_auth_simple, password));
	return tlv(t_sequence, integer(t_integer, id) + op);
}

std::string Ldap::search_request(std::uint32_t id, std::string_view base, std::string_view filter,
                                 std::string_view attr)
{
	// SearchRequest ::= [APPLICATION 3] SEQUENCE { baseObject LDAPDN, scope ENUMERATED
	//   (wholeSubtree 2), derefAliases ENUMERATED (neverDerefAliases 0), sizeLimit INTEGER,
	//   timeLimit INTEGER, typesOnly BOOLEAN, filter Filter, attributes AttributeSelection }
	const std::string op =
	    tlv(t_search_request, tlv(t_octets, base) + integer(t_enumerated, 2) +
	                              integer(t_enumerated, 0) + integer(t_integer, 0) +
	                              integer(t_integer, 0) + tlv(t_boolean, std::string(1, '\0')) +
	                              std::string(filter) + tlv(t_sequence, tlv(t_octets, attr)));
	return tlv(t_sequence, integer(t_integer, id) + op);
}

std::string Ldap::and_equality_filter(std::string_view oc, std::string_view attr,
                                      std::string_view value)
{
	// and [0] SET OF Filter; equalityMatch [3] AttributeValueAssertion ::=
	//   SEQUENCE { attributeDesc, assertionValue }
	return tlv(t_filter_and,
	           tlv(t_filter_equality, tlv(t_octets, "objectClass") + tlv(t_octets, oc)) +
	               tlv(t_filter_equality, tlv(t_octets, attr) + tlv(t_octets, value)));
}

std::string Ldap::substring_filter(std::string_view attr, std::string_view any)
{
	// substrings [4] SubstringFilter ::= SEQUENCE { type, substrings SEQUENCE OF
	//   CHOICE { initial [0], any [1], final [2] } }
	return tlv(t_filter_substrings,
	           tlv(t_octets, attr) + tlv(t_sequence, tlv(t_substring_any, any)));
}

void Ldap::make(Request &out, Kind kind, std::uint64_t key)
{
	const std::uint32_t id = next_id_;
	next_id_ = next_id_ == 0x7fffffff ? 1 : next_id_ + 1; // messageID (0 .. maxInt)
	out.kind = kind;
	out.first_key = key;
	out.keys = 1;
	out.tag = id;
	out.progress = 0;
	out.problem.clear();
	switch (kind) {
	case bind:
		out.bytes = bind_request(id, dn(key), password(key));
		break;
	case search:
		out.bytes = search_request(
		    id, base(), and_equality_filter("inetOrgPerson", "uid", uid(key)), "cn");
		break;
	case long_search:
		out.bytes =
		    search_request(id, base(), substring_filter("cn", pattern_text(key)), "cn");
		break;
	}
}

void Ldap::next(std::mt19937_64 &rng, Request &out)
{
	const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
	if (u < mix_.long_fraction && !long_patterns_.empty()) {
		make(out, long_search,
		     long_patterns_[std::uniform_int_distribution<std::size_t>(
		         0, long_patterns_.size() - 1)(rng)]);
		return;
	}
	make(out, search, std::uniform_int_distribution<std::uint64_t>(0, mix_.entries - 1)(rng));
}

bool Ldap::opening(std::uint64_t connection, Request &out)
{
	make(out, bind, connection % mix_.entries);
	return true;
}

bool Ldap::setup(std::size_t, Request &)
{
	return false; // the directory is loaded by slapadd (ldif())
}

ReplyStatus Ldap::frame(std::string_view in, std::size_t &length, std::uint64_t &tag,
                        std::string &why)
{
	unsigned char t = 0;
	std::size_t hdr = 0, len = 0;
	const int h = header(in, t, hdr, len);
	if (h > 0)
		return ReplyStatus::incomplete;
	if (h < 0 || t != t_sequence) {
		why = fmt::format("not an LDAPMessage (first octets {:02x} {:02x})",
		                  static_cast<unsigned char>(in[0]),
		                  static_cast<unsigned char>(in[1]));
		return ReplyStatus::broken;
	}
	if (in.size() - hdr < len)
		return ReplyStatus::incomplete;
	length = hdr + len;
	Reader r(in.substr(hdr, len));
	std::int64_t id = 0;
	if (!r.integer(t_integer, id) || id < 0) {
		why = "an LDAPMessage without a messageID";
		return ReplyStatus::broken;
	}
	if (id == 0) {
		// Unsolicited notification (RFC 4511 4.4), e.g. notice of disconnection.
		std::string_view op;
		unsigned char op_tag = 0;
		std::int64_t code = -1;
		std::string diagnostic;
		if (r.next(op_tag, op))
			read_result(op, code, diagnostic);
		why = fmt::format("unsolicited notification: resultCode {} \"{}\"", code,
		                  printable(diagnostic));
		return ReplyStatus::broken;
	}
	tag = static_cast<std::uint64_t>(id);
	return ReplyStatus::ok;
}

ReplyStatus Ldap::check_entry(Request &req, std::string_view op) const
{
	// SearchResultEntry ::= [APPLICATION 4] SEQUENCE { objectName LDAPDN, attributes
	//   PartialAttributeList ::= SEQUENCE OF SEQUENCE { type, vals SET OF value } }
	Reader r(op);
	std::string_view name, attrs;
	if (!r.expect(t_octets, name) || !r.expect(t_sequence, attrs))
		return ReplyStatus::broken;
	req.progress++;
	if (!req.problem.empty())
		return ReplyStatus::incomplete;
	// uid=u<8 digits>,<base>
	const std::string suffix = "," + base();
	std::uint64_t entry = 0;
	bool named = name.size() == 13 + suffix.size() && name.starts_with("uid=u") &&
	             iequals(name.substr(13), suffix);
	for (std::size_t i = 5; named && i < 13; i++) {
		named = std::isdigit(static_cast<unsigned char>(name[i])) != 0;
		entry = entry * 10 + static_cast<std::uint64_t>(name[i] - '0');
	}
	if (!named || entry >= mix_.entries) {
		req.problem = fmt::format("an entry not in the directory: \"{}\"", printable(name));
		return ReplyStatus::incomplete;
	}
	if (req.kind == search && entry != req.first_key) {
		req.problem =
		    fmt::format("searching {} found {}", uid(req.first_key), printable(name));
		return ReplyStatus::incomplete;
	}
	if (req.kind == long_search &&
	    name.substr(5, 8).find(pattern_text(req.first_key)) == std::string_view::npos) {
		req.problem = fmt::format("searching *{}* found {}", pattern_text(req.first_key),
		                          printable(name));
		return ReplyStatus::incomplete;
	}
	Reader list(attrs);
	std::string_view attr;
	unsigned cn_values = 0;
	while (!list.done()) {
		if (!list.expect(t_sequence, attr))
			return ReplyStatus::broken;
		Reader a(attr);
		std::string_view type, values, value;
		if (!a.expect(t_octets, type) || !a.expect(t_set, values))
			return ReplyStatus::broken;
		if (!iequals(type, "cn")) {
			req.problem = fmt::format("{}: attribute {} not asked for", printable(name),
			                          printable(type));
			return ReplyStatus::incomplete;
		}
		Reader v(values);
		while (!v.done()) {
			if (!v.expect(t_octets, value))
				return ReplyStatus::broken;
			cn_values++;
			if (value != cn(entry))
				req.problem =
				    fmt::format("{}: cn \"{}\", not \"{}\"", printable(name),
				                printable(value), cn(entry));
		}
	}
	if (req.problem.empty() && cn_values != 1)
		req.problem = fmt::format("{}: {} cn values, not 1", printable(name), cn_values);
	return ReplyStatus::incomplete;
}

ReplyStatus Ldap::feed(Request &req, std::string_view message, std::string &why)
{
	Reader outer(message);
	std::string_view body, op;
	std::int64_t id = 0;
	unsigned char tag = 0;
	if (!outer.expect(t_sequence, body)) {
		why = "not an LDAPMessage";
		return ReplyStatus::broken;
	}
	Reader r(body);
	if (!r.integer(t_integer, id) || !r.next(tag, op)) {
		why = "an LDAPMessage without a messageID or protocolOp";
		return ReplyStatus::broken;
	}
	const auto what = [&]() {
		switch (req.kind) {
		case bind:
			return fmt::format("bind as {}", dn(req.first_key));
		case search:
			return fmt::format("search (uid={})", uid(req.first_key));
		default:
			return fmt::format("search (cn=*{}*)", pattern_text(req.first_key));
		}
	};
	const bool searching = req.kind != bind;
	if (searching && tag == t_search_entry) {
		if (check_entry(req, op) == ReplyStatus::broken) {
			why = fmt::format("{}: malformed SearchResultEntry", what());
			return ReplyStatus::broken;
		}
		return ReplyStatus::incomplete;
	}
	if (searching && tag == t_search_reference) {
		if (req.problem.empty())
			req.problem = "a SearchResultReference";
		return ReplyStatus::incomplete;
	}
	if (tag != (searching ? t_search_done : t_bind_response)) {
		why = fmt::format("{}: protocolOp {:#04x} in the reply", what(), tag);
		return ReplyStatus::broken;
	}
	std::int64_t code = -1;
	std::string diagnostic;
	if (!read_result(op, code, diagnostic)) {
		why = fmt::format("{}: malformed LDAPResult", what());
		return ReplyStatus::broken;
	}
	if (code != 0) {
		why = fmt::format("{}: resultCode {} \"{}\"", what(), code, printable(diagnostic));
		return ReplyStatus::wrong;
	}
	const std::uint64_t expected = req.kind == search ? 1
	                               : req.kind == long_search
	                                   ? substring_count(static_cast<unsigned>(req.first_key))
	                                   : 0;
	if (!req.problem.empty()) {
		why = fmt::format("{}: {}", what(), req.problem);
		return ReplyStatus::wrong;
	}
	if (req.progress != expected) {
		why = fmt::format("{}: {} entries, not {}", what(), req.progress, expected);
		return ReplyStatus::wrong;
	}
	return ReplyStatus::ok;
}

ReplyStatus Ldap::parse(const Request &req, std::string_view in, std::size_t &consumed,
                        std::string &why)
{
	// In order: the reply's messages are the first ones in `in`.
	Request state = req;
	state.progress = 0;
	state.problem.clear();
	for (std::size_t pos = 0;;) {
		std::size_t length = 0;
		std::uint64_t tag = 0;
		const auto framed = frame(in.substr(pos), length, tag, why);
		if (framed != ReplyStatus::ok)
			return framed;
		if (tag != req.tag) {
			why =
			    fmt::format("a reply with messageID {} where {} was due", tag, req.tag);
			return ReplyStatus::broken;
		}
		const auto status = feed(state, in.substr(pos, length), why);
		pos += length;
		if (status != ReplyStatus::incomplete) {
			consumed = pos;
			return status;
		}
	}
}

} // namespace atlas::loadgen
