// SPDX-License-Identifier: MIT
#include "producer_check.hpp"

#include <cerrno>
#include <cstring>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sstream>
#include <unistd.h>

namespace atlas::build_patch
{

using patch::Errc;
using patch::make_error;
using patch::Result;

const std::vector<RequiredFlag> &required_compile_flags()
{
	static const std::vector<RequiredFlag> flags = {
	    {"-g",
	     {},
	     "DWARF: the builder reads each unit's compiler flags from DW_AT_producer (gcc "
	     "records them by default, -grecord-gcc-switches)"},
	    {"-ffunction-sections",
	     {"-ffunction-sections"},
	     "one section per function: the builder compares, copies and redirects functions "
	     "one by one"},
	    {"-fdata-sections",
	     {"-fdata-sections"},
	     "one section per datum: data are compared one by one, and the patch binds each to "
	     "the program's instance"},
	    {"-flive-patching=inline-clone",
	     {"-flive-patching=inline-clone", "-flive-patching=inline-only-static"},
	     "gcc's option for live patching: keeps inlining and cloning (whose callers the "
	     "builder pulls into the patch) but turns off the interprocedural analyses that let "
	     "callers depend on a callee's body (IPA-RA register use, ICF, IPA-CP value and bit "
	     "propagation, pure/const discovery, mod/ref): a replaced function could break "
	     "callers built on those facts"},
	    {"-fPIE",
	     {},
	     "position-independent code (Debian's default): the loader places the patch "
	     "anywhere, and rejects absolute 32-bit relocations"},
	};
	return flags;
}

const std::vector<RequiredFlag> &required_link_flags()
{
	static const std::vector<RequiredFlag> flags = {
	    {"-pie", {}, "a position-independent executable (Debian's default)"},
	    {"-Wl,--build-id",
	     {},
	     "a GNU build-id (Debian's default): a patch is bound to the exact binary"},
	};
	return flags;
}

namespace
{

struct DwarfCloser {
	Dwarf *dw;
	int fd;
	~DwarfCloser()
	{
		if (dw)
			dwarf_end(dw);
		if (fd >= 0)
			::close(fd);
	}
};

std::string attr_string(Dwarf_Die *die, int name)
{
	Dwarf_Attribute attr;
	if (!dwarf_attr_integrate(die, name, &attr))
		return {};
	const char *s = dwarf_formstring(&attr);
	return s ? s : "";
}

std::vector<std::string> tokens(std::string_view s)
{
	std::vector<std::string> out;
	std::istringstream in{std::string(s)};
	for (std::string t; in >> t;)
		out.push_back(t);
	return out;
}

} // namespace

Result<std::vector<CompileUnit>> read_compile_units(const std::string &path)
{
	int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return make_error(Errc::io,
		                  fmt::format("cannot open {}: {}", path, std::strerror(errno)));
	DwarfCloser c{dwarf_begin(fd, DWARF_C_READ), fd};
	std::vector<CompileUnit> out;
	if (!c.dw)
		return out; // no DWARF (libdw says why only by message)
	Dwarf_Off off = 0, next;
	size_t header_size;
	while (dwarf_next_unit(c.dw, off, &next, &header_size, nullptr, nullptr, nullptr, nullptr,
	                       nullptr, nullptr) == 0) {
		Dwarf_Die die;
		if (dwarf_offdie(c.dw, off + header_size, &die) &&
		    (dwarf_tag(&die) == DW_TAG_compile_unit ||
		     dwarf_tag(&die) == DW_TAG_partial_unit)) {
			CompileUnit u;
			u.name = attr_string(&die, DW_AT_name);
			u.comp_dir = attr_string(&die, DW_AT_comp_dir);
			u.producer = attr_string(&die, DW_AT_producer);
			out.push_back(std::move(u));
		}
		off = next;
	}
	return out;
}

bool is_gcc_unit(const CompileUnit &unit)
{
	return unit.producer.starts_with("GNU C") || unit.producer.starts_with("GNU Objective");
}

std::vector<std::string> missing_flags(std::string_view producer)
{
	std::vector<std::string> missing;
	if (!producer.starts_with("GNU C")) {
		missing.push_back(fmt::format("compiled by '{}', not gcc/g++ (the flags above are "
		                              "gcc's)",
		                              producer.substr(0, producer.find(' ', 20))));
		return missing;
	}
	const std::vector<std::string> opts = tokens(producer);
	for (const RequiredFlag &f : required_compile_flags()) {
		if (f.accepted.empty())
			continue;
		// The last occurrence of an option or its negation wins.
		bool on = false;
		for (const std::string &o : opts) {
			for (const std::string &a : f.accepted)
				if (o == a)
					on = true;
			if (f.flag.starts_with("-f") && o == "-fno-" + f.flag.substr(2))
				on = false;
			if (f.flag.starts_with("-flive-patching") &&
			    o.starts_with("-fno-live-patching"))
				on = false;
		}
		if (!on)
			missing.push_back(f.flag);
	}
	return missing;
}

} // namespace atlas::build_patch
