# Runs at `cmake --install` time (CMakeLists.txt): CMAKE_INSTALL_PREFIX is --prefix's, and
# file(INSTALL) adds $DESTDIR itself.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(sysconfdir "/etc")  # as GNUInstallDirs has it for /usr
else()
  set(sysconfdir "${CMAKE_INSTALL_PREFIX}/etc")
endif()
set(CMAKE_INSTALL_FULL_SBINDIR "${CMAKE_INSTALL_PREFIX}/${BULKHEAD_SBINDIR}")
set(CMAKE_INSTALL_FULL_SYSCONFDIR "${sysconfdir}")
set(unit "${BULKHEAD_STAGING}/bulkheadd.service")  # in the build tree, whatever the cwd
configure_file("${BULKHEAD_PACKAGING}/bulkheadd.service.in" "${unit}" @ONLY)
file(INSTALL "${unit}" DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")

# The configuration and the first policy are the operator's once there: never overwritten.
foreach(file bulkhead.yaml policies/00-monitor-everything.yaml)
  set(target "${sysconfdir}/bulkhead/${file}")
  if(EXISTS "$ENV{DESTDIR}${target}")
    message(STATUS "Kept: $ENV{DESTDIR}${target}")
  else()
    get_filename_component(directory "${target}" DIRECTORY)
    file(INSTALL "${BULKHEAD_PACKAGING}/${file}" DESTINATION "${directory}")
  endif()
endforeach()
