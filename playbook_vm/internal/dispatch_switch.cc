// The interpreter with switch dispatch: portable, and tested against the computed-goto
// build on the same programs.
#define VIGIL_VM_GOTO 0
#define VIGIL_VM_RUN runSwitch
#include "playbook_vm/internal/interpreter.inc"
