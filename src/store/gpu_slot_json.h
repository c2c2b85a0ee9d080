// GpuSlot <-> the JSON text kept in the sessions.gpu_slot column. Pure.
#pragma once

#include <optional>
#include <string>

#include "model/session.h"

namespace sandman {

std::optional<std::string> gpuSlotToJson(const std::optional<GpuSlot>& slot);
std::optional<GpuSlot> gpuSlotFromJson(const std::string& text);  // nullopt when unreadable

}  // namespace sandman
