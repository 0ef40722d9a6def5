"""Dashboard pages and their JSON endpoints, one module per page: thin — check the role,
call a selector or a service, render. Every page needs a login; viewers read, operators act."""
