# service/embed.cmake -- write IN (service/openapi.json) as a C array OUT,
# so the server answers GET /openapi.json from its own binary:
#   cmake -DIN=openapi.json -DOUT=openapi_json.c -P embed.cmake
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR n "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}.tmp"
  "/* Generated from service/openapi.json by service/embed.cmake. */\n"
  "#include <stddef.h>\n"
  "extern const char srv_openapi_json[];\n"
  "extern const size_t srv_openapi_json_len;\n"
  "const char srv_openapi_json[] = {\n${bytes}0};\n"
  "const size_t srv_openapi_json_len = ${n};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
