/*
 * main.c -- the entry point of the `resonance` command-line tool.  All of
 * the tool is in cli.c and the cli_*.c files; main() lives apart so that
 * the fuzz targets (tests/fuzz) can link that code with libFuzzer's main.
 */
#include "cli.h"

int main(int argc, char **argv) { return cli_main(argc, argv); }
