// Types of check-layers.mjs, for its test (the script itself runs in plain Node, before any build).
export declare const SERVER_LAYERS: Record<string, string[]>
export declare const SERVER_ROOT_FILES: string[]
export declare const LAYER_EXEMPT_FILES: string[]
export declare const PACKAGE_IMPORTS: Record<string, string[]>
export declare const CLIENT_NODE_FILES: string[]
export declare function checkLayers(root: string, options?: { packages?: string[] }): { problems: string[]; files: number; packages: string[] }
export declare function readImports(file: string): { specifier: string; line: number; typeOnly: boolean }[]
