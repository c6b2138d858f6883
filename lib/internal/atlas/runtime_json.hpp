// atlas/runtime_json.hpp - the JSON forms of the runtime's status and reports: one definition
// of the wire format, used by StatusSnapshot::to_json(), the control socket and the CLI.
#ifndef ATLAS_RUNTIME_JSON_HPP
#define ATLAS_RUNTIME_JSON_HPP

#include <nlohmann/json.hpp>

#include "atlas/runtime.hpp"

namespace atlas
{

nlohmann::json to_json_value(const ThreadInfo &thread);
nlohmann::json to_json_value(const Report &report);
nlohmann::json to_json_value(const StatusSnapshot &status);

} // namespace atlas

#endif // ATLAS_RUNTIME_JSON_HPP
