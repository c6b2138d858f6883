// The load generator's LDAP: requests byte for byte against encodings derived by hand from
// RFC 4511's ASN.1 under BER, replies as slapd frames them (liblber writes 4-octet lengths:
// 0x84 ...) parsed whole and split at every byte, each check of a reply made to fail once, and
// the engine matching replies that come out of order by their tags.
#include "engine.hpp"
#include "ldap.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace atlas::loadgen;

namespace
{

std::string hex(std::string_view s)
{
	std::string out;
	for (unsigned char c : s) {
		static const char digits[] = "0123456789abcdef";
		out += digits[c >> 4];
		out += digits[c & 15];
	}
	return out;
}

std::string bytes(std::initializer_list<int> octets)
{
	std::string s;
	for (int o : octets)
		s += static_cast<char>(o);
	return s;
}

// An element the way liblber writes constructed ones: the length always in 4 octets.
std::string long_tlv(int tag, const std::string &content)
{
	const auto n = content.size();
	return bytes({tag, 0x84, static_cast<int>(n >> 24), static_cast<int>((n >> 16) & 255),
	              static_cast<int>((n >> 8) & 255), static_cast<int>(n & 255)}) +
	       content;
}

std::string short_tlv(int tag, const std::string &content)
{
	return bytes({tag, static_cast<int>(content.size())}) + content;
}

std::string message(int id, const std::string &op)
{
	return long_tlv(0x30, bytes({0x02, 0x01, id}) + op);
}

// SearchResultEntry [APPLICATION 4] { objectName, attributes { { type, vals SET } } }
std::string entry(int id, const std::string &dn, const std::string &type, const std::string &value)
{
	const std::string attr =
	    long_tlv(0x30, short_tlv(0x04, type) + long_tlv(0x31, short_tlv(0x04, value)));
	return message(id, long_tlv(0x64, short_tlv(0x04, dn) + long_tlv(0x30, attr)));
}

// LDAPResult in [APPLICATION tag] { resultCode ENUMERATED, matchedDN, diagnosticMessage }
std::string result(int id, int tag, int code, const std::string &diagnostic = "")
{
	return message(id, long_tlv(tag, bytes({0x0a, 0x01, code}) + short_tlv(0x04, "") +
	                                     short_tlv(0x04, diagnostic)));
}

Request make_request(Ldap &ldap, Ldap::Kind kind, std::uint64_t key, std::uint64_t tag)
{
	Request r;
	r.kind = kind;
	r.first_key = key;
	r.tag = tag;
	(void)ldap;
	return r;
}

} // namespace

TEST(LdapProtocol, BindRequestIsTheRfc4511Encoding)
{
	// LDAPMessage { messageID 1, BindRequest [APPLICATION 0] { version 3, name "cn=a",
	//   simple [0] "b" } }
	const std::string want = bytes({0x30, 0x11, 0x02, 0x01, 0x01, 0x60, 0x0c, 0x02, 0x01, 0x03,
	                                0x04, 0x04, 'c', 'n', '=', 'a', 0x80, 0x01, 'b'});
	EXPECT_EQ(hex(Ldap::bind_request(1, "cn=a", "b")), hex(want));
}

TEST(LdapProtocol, SearchRequestIsTheRfc4511Encoding)
{
	// and [0] { equalityMatch [3] { "objectClass", "person" }, equalityMatch [3] { "uid", "u1"
	// } }
	const std::string filter =
	    bytes({0xa0, 0x22, 0xa3, 0x15, 0x04, 0x0b}) + "objectClass" + bytes({0x04, 0x06}) +
	    "person" + bytes({0xa3, 0x09, 0x04, 0x03}) + "uid" + bytes({0x04, 0x02}) + "u1";
	EXPECT_EQ(hex(Ldap::and_equality_filter("person", "uid", "u1")), hex(filter));
	// SearchRequest [APPLICATION 3] { "dc=x", wholeSubtree (2), neverDerefAliases (0),
	//   sizeLimit 0, timeLimit 0, typesOnly FALSE, filter, attributes { "cn" } }
	const std::string want = bytes({0x30, 0x44, 0x02, 0x01, 0x02, 0x63, 0x3f, 0x04, 0x04}) +
	                         "dc=x" +
	                         bytes({0x0a, 0x01, 0x02, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02,
	                                0x01, 0x00, 0x01, 0x01, 0x00}) +
	                         filter + bytes({0x30, 0x04, 0x04, 0x02, 'c', 'n'});
	EXPECT_EQ(hex(Ldap::search_request(2, "dc=x", filter, "cn")), hex(want));
	// substrings [4] { "cn", { any [1] "123" } }
	EXPECT_EQ(
	    hex(Ldap::substring_filter("cn", "123")),
	    hex(bytes({0xa4, 0x0b, 0x04, 0x02, 'c', 'n', 0x30, 0x05, 0x81, 0x03, '1', '2', '3'})));
}

TEST(LdapProtocol, LongLengthsAndLargeIdsAreEncodedInBerLongForm)
{
	const std::string dn(200, 'x');
	const std::string req = Ldap::bind_request(0x7fffffff, dn, "");
	// messageID: 02 04 7f ff ff ff (6 octets); BindRequest: version (3) + name (04 81 c8 and
	// 200 octets: 203) + simple (80 00: 2) = 208 = 0xd0 octets after 60 81 d0; the message
	// 6 + 3 + 208 = 217 = 0xd9 octets after 30 81 d9.
	ASSERT_GE(req.size(), 12u);
	EXPECT_EQ(hex(req.substr(0, 9)), "3081d902047fffffff");
	EXPECT_EQ(hex(req.substr(9, 3)), "6081d0");
	EXPECT_EQ(req.size(), 3u + 0xd9);
	// messageID 128 needs a leading zero octet (INTEGER is two's complement).
	EXPECT_EQ(hex(Ldap::bind_request(128, "", "").substr(2, 4)), "02020080");
}

TEST(LdapProtocol, TheDirectoryIsWhatTheChecksExpect)
{
	LdapMix mix;
	mix.entries = 3;
	Ldap ldap(mix);
	const std::string ldif = ldap.ldif();
	EXPECT_NE(ldif.find("dn: dc=atlas,dc=test\n"), std::string::npos);
	EXPECT_NE(ldif.find("dn: ou=people,dc=atlas,dc=test\n"), std::string::npos);
	EXPECT_NE(ldif.find("dn: uid=u00000002,ou=people,dc=atlas,dc=test\n"), std::string::npos);
	EXPECT_NE(ldif.find("cn: User 00000002\n"), std::string::npos);
	EXPECT_NE(ldif.find("userPassword: p00000002\n"), std::string::npos);
	EXPECT_EQ(ldif.find("u00000003"), std::string::npos);
	// 00000000, 00000001, 00000002: each contains 000; only one contains 002.
	EXPECT_EQ(ldap.substring_count(0), 3u);
	EXPECT_EQ(ldap.substring_count(2), 1u);
	EXPECT_EQ(ldap.substring_count(123), 0u);
	for (unsigned p : ldap.long_patterns())
		EXPECT_GE(ldap.substring_count(p), 1u);
}

TEST(LdapProtocol, ASearchReplyParsesWholeAndSplitAnywhere)
{
	Ldap ldap{LdapMix{}};
	const Request req = make_request(ldap, Ldap::search, 42, 7);
	const std::string reply =
	    entry(7, "uid=u00000042,ou=people,dc=atlas,dc=test", "cn", "User 00000042") +
	    result(7, 0x65, 0);
	std::string why;
	for (std::size_t cut = 0; cut < reply.size(); cut++) {
		std::size_t consumed = 0;
		EXPECT_EQ(ldap.parse(req, std::string_view(reply).substr(0, cut), consumed, why),
		          ReplyStatus::incomplete)
		    << "cut at " << cut;
	}
	std::size_t consumed = 0;
	const std::string more = reply + result(8, 0x65, 0);
	EXPECT_EQ(ldap.parse(req, more, consumed, why), ReplyStatus::ok) << why;
	EXPECT_EQ(consumed, reply.size());
}

TEST(LdapProtocol, EveryCheckOfAReplyCanFail)
{
	Ldap ldap{LdapMix{}};
	const std::string dn42 = "uid=u00000042,ou=people,dc=atlas,dc=test";
	const Request req = make_request(ldap, Ldap::search, 42, 7);
	const auto status = [&](const std::string &reply, std::string &why) {
		std::size_t consumed = 0;
		return ldap.parse(req, reply, consumed, why);
	};
	std::string why;
	EXPECT_EQ(status(entry(7, dn42, "cn", "User 00000043") + result(7, 0x65, 0), why),
	          ReplyStatus::wrong);
	EXPECT_NE(why.find("User 00000043"), std::string::npos) << why;
	EXPECT_EQ(
	    status(entry(7, "uid=u00000043,ou=people,dc=atlas,dc=test", "cn", "User 00000043") +
	               result(7, 0x65, 0),
	           why),
	    ReplyStatus::wrong);
	EXPECT_EQ(status(result(7, 0x65, 0), why), ReplyStatus::wrong);
	EXPECT_NE(why.find("0 entries, not 1"), std::string::npos) << why;
	EXPECT_EQ(status(entry(7, dn42, "cn", "User 00000042") +
	                     entry(7, dn42, "cn", "User 00000042") + result(7, 0x65, 0),
	                 why),
	          ReplyStatus::wrong);
	EXPECT_EQ(status(entry(7, dn42, "sn", "s00000042") + result(7, 0x65, 0), why),
	          ReplyStatus::wrong);
	EXPECT_EQ(status(result(7, 0x65, 32, "no such object"), why), ReplyStatus::wrong);
	EXPECT_NE(why.find("resultCode 32 \"no such object\""), std::string::npos) << why;
	// A bind's result where a search's is due, another request's reply first, a notice of
	// disconnection (messageID 0), bytes that are not BER: the stream is broken.
	EXPECT_EQ(status(result(7, 0x61, 0), why), ReplyStatus::broken);
	EXPECT_EQ(status(result(8, 0x65, 0), why), ReplyStatus::broken);
	EXPECT_EQ(status(message(0, long_tlv(0x78, bytes({0x0a, 0x01, 0x34}) + short_tlv(0x04, "") +
	                                               short_tlv(0x04, "shutting down"))),
	                 why),
	          ReplyStatus::broken);
	EXPECT_NE(why.find("shutting down"), std::string::npos) << why;
	EXPECT_EQ(status("HTTP/1.1 400 Bad Request\r\n", why), ReplyStatus::broken);
}

TEST(LdapProtocol, SubstringSearchesAndBindsAreChecked)
{
	LdapMix mix;
	mix.entries = 1200;
	Ldap ldap(mix);
	// (cn=*123*) over 1200 entries: 00000123 and 00001123 (1230 and on are not there).
	ASSERT_EQ(ldap.substring_count(123), 2u);
	const Request req = make_request(ldap, Ldap::long_search, 123, 9);
	const std::string e1 =
	    entry(9, "uid=u00000123,ou=people,dc=atlas,dc=test", "cn", "User 00000123");
	const std::string e2 =
	    entry(9, "uid=u00001123,ou=people,dc=atlas,dc=test", "cn", "User 00001123");
	const std::string other =
	    entry(9, "uid=u00001124,ou=people,dc=atlas,dc=test", "cn", "User 00001124");
	std::string why;
	std::size_t consumed = 0;
	EXPECT_EQ(ldap.parse(req, e2 + e1 + result(9, 0x65, 0), consumed, why), ReplyStatus::ok)
	    << why;
	EXPECT_EQ(ldap.parse(req, e1 + result(9, 0x65, 0), consumed, why), ReplyStatus::wrong);
	EXPECT_EQ(ldap.parse(req, e1 + other + result(9, 0x65, 0), consumed, why),
	          ReplyStatus::wrong);
	Request bind;
	ASSERT_TRUE(ldap.opening(5, bind));
	EXPECT_EQ(bind.kind, Ldap::bind);
	EXPECT_EQ(bind.bytes.find(ldap.dn(5)) != std::string::npos, true);
	EXPECT_EQ(ldap.parse(bind, result(static_cast<int>(bind.tag), 0x61, 0), consumed, why),
	          ReplyStatus::ok)
	    << why;
	EXPECT_EQ(ldap.parse(bind, result(static_cast<int>(bind.tag), 0x61, 49), consumed, why),
	          ReplyStatus::wrong);
}

namespace
{

// A protocol whose replies name their request: request "<tag>\n", reply "<tag>:<n>\n" in
// n parts ("<tag>.\n" each, then "<tag>:done\n"). The fake server answers each batch of
// requests it reads in reverse order, interleaving the parts.
class Tagged final : public Protocol
{
public:
	std::vector<std::string> kinds() const override
	{
		return {"r"};
	}
	void next(std::mt19937_64 &, Request &out) override
	{
		out.tag = ++tag_;
		out.kind = 0;
		out.bytes = std::to_string(out.tag) + "\n";
	}
	bool setup(std::size_t, Request &) override
	{
		return false;
	}
	ReplyStatus parse(const Request &, std::string_view, std::size_t &,
	                  std::string &why) override
	{
		why = "in order only";
		return ReplyStatus::broken;
	}
	bool tagged() const override
	{
		return true;
	}
	ReplyStatus frame(std::string_view in, std::size_t &length, std::uint64_t &tag,
	                  std::string &why) override
	{
		const auto eol = in.find('\n');
		if (eol == std::string_view::npos)
			return ReplyStatus::incomplete;
		length = eol + 1;
		tag = std::stoull(std::string(in.substr(0, eol)));
		if (tag == 0) {
			why = "tag 0";
			return ReplyStatus::broken;
		}
		return ReplyStatus::ok;
	}
	ReplyStatus feed(Request &req, std::string_view message, std::string &) override
	{
		if (message.find(":done") != std::string_view::npos)
			return req.progress == 2 ? ReplyStatus::ok : ReplyStatus::wrong;
		req.progress++;
		return ReplyStatus::incomplete;
	}

private:
	std::uint64_t tag_ = 0;
};

} // namespace

TEST(Loadgen, TaggedRepliesAreMatchedOutOfOrder)
{
	const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0);
	ASSERT_EQ(listen(listener, 8), 0);
	ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr *>(&a), &len), 0);
	std::atomic<unsigned> reordered{0};
	std::thread server([&] {
		const int fd = accept(listener, nullptr, nullptr);
		std::string in;
		char buf[4096];
		for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) {
			in.append(buf, static_cast<std::size_t>(n));
			std::vector<std::string> tags;
			for (std::size_t eol; (eol = in.find('\n')) != std::string::npos;) {
				tags.push_back(in.substr(0, eol));
				in.erase(0, eol + 1);
			}
			if (tags.size() > 1)
				reordered++;
			std::string out;
			for (auto it = tags.rbegin(); it != tags.rend(); ++it)
				out += *it + ".\n";
			for (const auto &t : tags)
				out += t + ".\n";
			for (auto it = tags.rbegin(); it != tags.rend(); ++it)
				out += *it + ":done\n";
			if (send(fd, out.data(), out.size(), MSG_NOSIGNAL) < 0)
				break;
		}
		close(fd);
	});
	Options o;
	o.port = ntohs(a.sin_port);
	o.rate = 20000;
	o.duration_s = 0.5;
	o.connections = 1;
	// The drain ends as soon as every reply is in; its length only bounds a slow run (TSan on a
	// loaded host answered half of the 10,000 requests within 2 s).
	o.drain_s = 30;
	Result r;
	std::string error;
	ASSERT_TRUE(run_load(
	    o, [] { return std::make_unique<Tagged>(); }, r, error))
	    << error;
	server.join();
	close(listener);
	EXPECT_GT(r.sent, 5000u);
	EXPECT_EQ(r.answered, r.sent);
	EXPECT_EQ(r.wrong, 0u);
	EXPECT_EQ(r.unanswered, 0u);
	EXPECT_GT(reordered.load(), 0u); // some batches were answered in reverse order
}
