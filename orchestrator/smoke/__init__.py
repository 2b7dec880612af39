"""The smoke tests: ``suite`` (the check table and its runner), ``app`` (the downstream
app check), ``hardening`` (the interpreter-hardening check), ``elf`` (reading ELF
files for it), ``gcc_switches`` (the compiler switches it expects), ``checks/``
(the files run inside an image: package data, never imported)."""
