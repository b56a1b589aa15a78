"""The HTTP view: thin routes over the query functions, the command routes, the OpenAPI document."""
