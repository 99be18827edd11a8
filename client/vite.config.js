import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";

// `npm run dev` serves on :8080 (an origin the server's default CORS list allows);
// `npm run build` writes client/dist, which the Rust server serves at `/`.
export default defineConfig({
  plugins: [vue()],
  server: { port: 8080 },
  build: { outDir: "dist", emptyOutDir: true },
});
