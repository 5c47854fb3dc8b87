/** The admin endpoint's default connection limit, in its own module so the config spec can name it without loading the server. */
export const MAX_ADMIN_CONNECTIONS = 64;
