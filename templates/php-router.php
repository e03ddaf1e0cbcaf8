<?php
// stackato-local: the router `php -S` runs every request through. It stands in for the
// front-controller rewrite most PHP apps put in .htaccess:
//     RewriteCond %{REQUEST_FILENAME} !-f
//     RewriteCond %{REQUEST_FILENAME} !-d
//     RewriteRule ^(.*)$ index.php [QSA,L]
// An existing file is served as it is (a .php one runs); a directory with an index.php runs
// that; anything else runs the document root's index.php with the clean URL in PATH_INFO and
// REQUEST_URI kept, as Apache's mod_rewrite left them.
$root = rtrim(realpath($_SERVER['DOCUMENT_ROOT']) ?: $_SERVER['DOCUMENT_ROOT'], '/');
$path = rawurldecode(parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) ?? '/');
$file = realpath($root . $path);
$inside = $file !== false && ($file === $root || strpos($file, $root . '/') === 0);
if ($inside && is_file($file)) {
    return false;
}
if ($inside && is_dir($file) && is_file($file . '/index.php')) {
    return false;
}
$index = $root . '/index.php';
if (!is_file($index)) {
    return false;
}
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $index;
$_SERVER['PHP_SELF'] = '/index.php' . $path;
$_SERVER['PATH_INFO'] = $path;
chdir($root);
require $index;
