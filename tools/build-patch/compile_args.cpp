// SPDX-License-Identifier: MIT
#include "compile_args.hpp"

#include <set>

namespace atlas::build_patch
{

namespace
{

// Options whose value is the next argument.
const std::set<std::string> &options_with_argument()
{
	static const std::set<std::string> opts = {
	    "-o",
	    "-I",
	    "-D",
	    "-U",
	    "-include",
	    "-imacros",
	    "-isystem",
	    "-idirafter",
	    "-iquote",
	    "-iprefix",
	    "-iwithprefix",
	    "-iwithprefixbefore",
	    "-isysroot",
	    "-imultilib",
	    "-MF",
	    "-MT",
	    "-MQ",
	    "-x",
	    "-Xlinker",
	    "-Xassembler",
	    "-Xpreprocessor",
	    "-L",
	    "-l",
	    "-T",
	    "-u",
	    "-z",
	    "-e",
	    "-aux-info",
	    "--param",
	    "-dumpbase",
	    "-dumpdir",
	    "-dumpbase-ext",
	    "-wrapper",
	    "-B",
	    "-specs",
	    "-A",
	};
	return opts;
}

std::string extension(const std::string &path)
{
	size_t slash = path.rfind('/');
	size_t dot = path.rfind('.');
	if (dot == std::string::npos || (slash != std::string::npos && dot < slash))
		return {};
	return path.substr(dot);
}

bool is_any_source(const std::string &path)
{
	static const std::set<std::string> exts = {".c",  ".cc",  ".cp", ".cpp", ".cxx", ".c++",
	                                           ".C",  ".CPP", ".i",  ".ii",  ".s",   ".S",
	                                           ".sx", ".m",   ".mm", ".M"};
	return exts.count(extension(path)) > 0;
}

std::string object_name(const std::string &source)
{
	size_t slash = source.rfind('/');
	std::string base = slash == std::string::npos ? source : source.substr(slash + 1);
	size_t dot = base.rfind('.');
	return base.substr(0, dot) + ".o";
}

} // namespace

bool is_c_family_source(const std::string &path)
{
	static const std::set<std::string> exts = {".c",   ".cc",  ".cp", ".cpp",
	                                           ".cxx", ".c++", ".C",  ".CPP"};
	return exts.count(extension(path)) > 0;
}

CompilerCommand parse_compiler_command(const std::vector<std::string> &args)
{
	CompilerCommand cmd;
	bool compile_only = false, stop_early = false;
	std::string output;
	std::vector<std::string> sources, inputs;
	for (size_t i = 0; i < args.size(); i++) {
		const std::string &a = args[i];
		if (a == "-c") {
			compile_only = true;
		} else if (a == "-S" || a == "-E" || a == "-M" || a == "-MM" ||
		           a == "-fsyntax-only" || a == "--version" || a == "-v" ||
		           a == "-dumpversion" || a == "-dumpmachine" || a.starts_with("-print-") ||
		           a == "--help") {
			stop_early = true;
		} else if (a == "-o" && i + 1 < args.size()) {
			output = args[++i];
		} else if (a.starts_with("-o") && a.size() > 2) {
			output = a.substr(2);
		} else if (options_with_argument().count(a)) {
			i++;
		} else if (a == "-") {
			stop_early = true; // reads stdin: nothing to record
		} else if (!a.empty() && a[0] == '-') {
			// an option with its value joined, or without value
		} else if (is_any_source(a)) {
			sources.push_back(a);
		} else {
			inputs.push_back(a);
		}
	}
	if (stop_early)
		return cmd;
	if (compile_only) {
		for (const std::string &s : sources)
			if (is_c_family_source(s))
				cmd.compiles.emplace_back(s, !output.empty() && sources.size() == 1
				                                 ? output
				                                 : object_name(s));
		return cmd;
	}
	if (sources.empty() && inputs.empty())
		return cmd;
	cmd.links = true;
	cmd.link_output = output.empty() ? "a.out" : output;
	cmd.link_inputs = inputs;
	for (const std::string &s : sources)
		if (is_c_family_source(s))
			cmd.compiled_and_linked.push_back(s);
	return cmd;
}

} // namespace atlas::build_patch
