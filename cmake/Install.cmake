# What `cmake --install` puts where (util/install_layout.hpp finds them from bin/ at run time):
# bin/contractor, libexec/contractor/contractor-manager (cli/ and manager-agent/), the man page
# and bash completion (cli/), and here the image recipes with the files they name, which keep
# their relative paths (images/worker/recipe.yaml names ../../worker-agent/contractor-init).
install(DIRECTORY images/worker images/worker-toolchain images/manager images/shared
  DESTINATION ${CMAKE_INSTALL_DATADIR}/contractor/images USE_SOURCE_PERMISSIONS)
install(FILES images/README.md DESTINATION ${CMAKE_INSTALL_DATADIR}/contractor/images)
install(PROGRAMS worker-agent/contractor-init
  DESTINATION ${CMAKE_INSTALL_DATADIR}/contractor/worker-agent)
install(FILES README.md CHANGELOG.md ARCHITECTURE.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs FILES_MATCHING PATTERN "*.md")
