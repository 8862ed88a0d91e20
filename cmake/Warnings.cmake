# Warnings every target gets. -Werror is switched on by ./test so a warning fails CI but a
# newer compiler's new warning does not stop a user's build.
add_library(contractor_warnings INTERFACE)
target_compile_options(contractor_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
  -Wimplicit-fallthrough)
if(CONTRACTOR_WERROR)
  target_compile_options(contractor_warnings INTERFACE -Werror)
endif()

if(CONTRACTOR_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
