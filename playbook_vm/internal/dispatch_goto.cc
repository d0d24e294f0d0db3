// The interpreter with computed-goto dispatch (GCC and Clang label addresses). On other
// compilers it falls back to the switch loop under this name, so Dispatch::kComputedGoto
// still runs.
#include "playbook_vm/vm.h"

#if VIGIL_VM_HAS_COMPUTED_GOTO
#define VIGIL_VM_GOTO 1
#else
#define VIGIL_VM_GOTO 0
#endif
#define VIGIL_VM_RUN runComputedGoto
#include "playbook_vm/internal/interpreter.inc"
