// The control protocol's tables (protocol.hpp): lookups.
#include "protocol.hpp"

#include <fmt/format.h>

namespace atlas::control
{

const VerbSpec *find_verb(std::string_view name) noexcept
{
	for (const auto &v : verbs)
		if (v.name == name)
			return &v;
	return nullptr;
}

const VerbSpec &spec_of(Verb verb) noexcept
{
	for (const auto &v : verbs)
		if (v.verb == verb)
			return v;
	return verbs[0]; // unreachable: every Verb has a row (control tests)
}

std::string verb_list()
{
	std::string list;
	for (std::size_t i = 0; i < verbs.size(); i++)
		list += fmt::format("{}{}",
		                    i == 0                  ? ""
		                    : i + 1 == verbs.size() ? " or "
		                                            : ", ",
		                    verbs[i].name);
	return list;
}

const OutcomeSpec &spec_of(Outcome outcome) noexcept
{
	for (const auto &o : outcomes)
		if (o.outcome == outcome)
			return o;
	return outcomes[3]; // unreachable: every Outcome has a row (control tests)
}

const OutcomeSpec *find_outcome(std::string_view name) noexcept
{
	for (const auto &o : outcomes)
		if (o.name == name)
			return &o;
	return nullptr;
}

} // namespace atlas::control
