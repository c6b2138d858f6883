// SPDX-License-Identifier: MIT
// The metadata encoding: round trip and every refusal of the decoder and encoder.
#include "atlas/patch/format.hpp"

#include <gtest/gtest.h>

namespace atlas::patch
{
namespace
{

Metadata sample()
{
	Metadata m;
	m.name = "fix-1.2_b+c";
	m.flags = flag_requires_global;
	for (size_t i = 0; i < m.content_hash.size(); i++)
		m.content_hash[i] = uint8_t(i * 7);
	m.target_path = "/usr/sbin/server";
	m.target_build_id = {0xde, 0xad, 0xbe, 0xef, 0x01};
	m.redirects.push_back(Redirect{SymbolRef{"helper", "a.c", 34, 0x1139}, "helper_v2"});
	m.redirects.push_back(
	    Redirect{SymbolRef{"process", "", std::nullopt, std::nullopt}, "process"});
	m.redirects.push_back(
	    Redirect{SymbolRef{"helper", "b.c", std::nullopt, 0x1150}, "helper_v2"});
	m.references.push_back(
	    Reference{"a_counter", "", SymbolRef{"counter", "a.c", 35, std::nullopt}});
	m.references.push_back(Reference{"errno_ptr", "libc.so.6", SymbolRef{"errno", "", 0, 0}});
	return m;
}

std::vector<uint8_t> encoded()
{
	auto e = encode_metadata(sample());
	EXPECT_TRUE(e.ok());
	return *e;
}

void put_u32(std::vector<uint8_t> &b, size_t off, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[off + i] = uint8_t(v >> (8 * i));
}

Error decode_error(const std::vector<uint8_t> &b)
{
	auto d = decode_metadata(b);
	EXPECT_FALSE(d.ok());
	return d.ok() ? Error{} : d.error();
}

TEST(Format, RoundTrip)
{
	auto d = decode_metadata(encoded());
	ASSERT_TRUE(d.ok()) << d.error().message;
	EXPECT_EQ(*d, sample());
	EXPECT_TRUE(d->requires_global());
}

TEST(Format, EncodingIsLittleEndianAndFixed)
{
	auto b = encoded();
	ASSERT_GE(b.size(), metadata_header_size);
	EXPECT_EQ(std::string(b.begin(), b.begin() + 8), "ATLASPAT");
	EXPECT_EQ(b[8], 1); // version, little-endian
	EXPECT_EQ(b[9] | b[10] | b[11], 0);
	EXPECT_EQ(b[12], metadata_header_size);
	EXPECT_EQ(b[36], 3); // redirect count
	EXPECT_EQ(b[44], 2); // reference count
	EXPECT_EQ(b[content_hash_offset + 1], 7);
	// Deterministic: the same metadata always encodes to the same bytes.
	EXPECT_EQ(b, encoded());
}

TEST(Format, Identity)
{
	Metadata m = sample();
	Identity id = identity_of(m);
	EXPECT_EQ(id.to_string().substr(0, 12), "fix-1.2_b+c@");
	EXPECT_NE(id.to_string().find("/deadbeef01"), std::string::npos);
	m.content_hash[0] ^= 1;
	EXPECT_NE(identity_of(m), id);
}

TEST(Format, DecodeRefusesTruncation)
{
	auto b = encoded();
	for (size_t n = 0; n < b.size(); n++) {
		std::vector<uint8_t> t(b.begin(), b.begin() + n);
		EXPECT_FALSE(decode_metadata(t).ok()) << "prefix of " << n << " bytes";
	}
	b.push_back(0);
	EXPECT_NE(decode_error(b).message.find("header describes"), std::string::npos);
}

TEST(Format, DecodeRefusesBadMagic)
{
	auto b = encoded();
	b[0] = 'X';
	EXPECT_NE(decode_error(b).message.find("magic"), std::string::npos);
}

TEST(Format, DecodeRefusesOtherVersions)
{
	for (uint32_t v : {0u, 2u, 0x100u}) {
		auto b = encoded();
		put_u32(b, 8, v);
		Error e = decode_error(b);
		EXPECT_EQ(e.code, Errc::version_mismatch);
		EXPECT_NE(e.message.find("version " + std::to_string(v)), std::string::npos)
		    << e.message;
	}
}

TEST(Format, DecodeRefusesWrongRecordSizes)
{
	for (size_t off : {12u, 40u, 48u}) {
		auto b = encoded();
		put_u32(b, off, 40);
		EXPECT_EQ(decode_error(b).code, Errc::invalid_format);
	}
}

TEST(Format, DecodeRefusesCountsBeyondSection)
{
	auto b = encoded();
	put_u32(b, 36, 0xffffffff);
	EXPECT_NE(decode_error(b).message.find("header describes"), std::string::npos);
}

TEST(Format, DecodeRefusesBadStrings)
{
	auto b = encoded();
	uint32_t pool_size = b[52] | b[53] << 8;
	put_u32(b, 20, pool_size); // name offset one past the pool
	EXPECT_NE(decode_error(b).message.find("beyond the string pool"), std::string::npos);

	b = encoded();
	b.back() = 'x'; // the last string loses its NUL
	EXPECT_NE(decode_error(b).message.find("not NUL-terminated"), std::string::npos);

	b = encoded();
	b[b.size() - pool_size] = 'x'; // the pool must start with the empty string
	EXPECT_NE(decode_error(b).message.find("NUL byte"), std::string::npos);

	b = encoded();
	put_u32(b, 32, 1000); // build-id size
	EXPECT_NE(decode_error(b).message.find("build-id"), std::string::npos);
}

TEST(Format, DecodeRefusesUnknownFlags)
{
	auto b = encoded();
	put_u32(b, 16, 0x80000001);
	Error e = decode_error(b);
	EXPECT_EQ(e.code, Errc::unsupported);
	EXPECT_NE(e.message.find("0x80000000"), std::string::npos);

	b = encoded();
	put_u32(b, metadata_header_size + 12, 0x10); // redirect #0's record flags
	EXPECT_NE(decode_error(b).message.find("unknown flags"), std::string::npos);

	b = encoded();
	put_u32(b, metadata_header_size + 20, 1); // redirect #0's reserved field
	EXPECT_NE(decode_error(b).message.find("reserved"), std::string::npos);

	b = encoded();
	// redirect #1 has no index: a stray index is refused
	put_u32(b, metadata_header_size + redirect_record_size + 16, 5);
	EXPECT_NE(decode_error(b).message.find("no flag"), std::string::npos);
}

TEST(Format, DecodeRefusesEmptyNames)
{
	auto b = encoded();
	put_u32(b, metadata_header_size + 4, 0); // redirect #0 target name -> ""
	EXPECT_NE(decode_error(b).message.find("empty"), std::string::npos);
}

TEST(Format, EncodeRefusesInvalidMetadata)
{
	auto refused = [](Metadata m, const char *needle) {
		auto e = encode_metadata(m);
		ASSERT_FALSE(e.ok()) << needle;
		EXPECT_NE(e.error().message.find(needle), std::string::npos) << e.error().message;
	};
	Metadata m = sample();
	m.name = "";
	refused(m, "patch name");
	m = sample();
	m.name = "has space";
	refused(m, "patch name");
	m = sample();
	m.name = std::string(max_patch_name_size + 1, 'a');
	refused(m, "patch name");
	m = sample();
	m.target_path = "";
	refused(m, "target object path");
	m = sample();
	m.target_build_id.clear();
	refused(m, "build-id");
	m = sample();
	m.target_build_id.assign(max_build_id_size + 1, 1);
	refused(m, "build-id");
	m = sample();
	m.redirects.clear();
	refused(m, "redirects no function");
	m = sample();
	m.redirects.push_back(m.redirects[0]);
	refused(m, "redirected twice");
	m = sample();
	m.references.push_back(m.references[0]);
	refused(m, "bound twice");
	m = sample();
	m.flags = 2;
	refused(m, "unknown patch flags");
	m = sample();
	m.version = 2;
	refused(m, "version 2");
	m = sample();
	m.redirects[0].replacement = std::string("a\0b", 3);
	refused(m, "NUL");
}

TEST(Format, Hex)
{
	std::vector<uint8_t> b = {0x00, 0x1f, 0xa0, 0xff};
	EXPECT_EQ(to_hex(b), "001fa0ff");
	auto r = from_hex("001FA0ff");
	ASSERT_TRUE(r.ok());
	EXPECT_EQ(*r, b);
	EXPECT_FALSE(from_hex("abc").ok());
	EXPECT_FALSE(from_hex("zz").ok());
}

} // namespace
} // namespace atlas::patch
